"""Browser participants: real Chromium, driven by Playwright, joining a web app like a person.

``chromium`` launches one browser per participant; ``inject`` builds the in-page instrument (``media.js``);
``platform`` describes how to join a web app; ``participant`` is the engine the media host runs; ``stats``
maps what the page measured onto the rows of ``docs/results.md``.

Same layer as :mod:`harness.host`. May import: :mod:`harness.host`, :mod:`harness.systems`, :mod:`harness.media`,
:mod:`harness.rtc`, :mod:`harness.probes`, :mod:`harness.analysis`, :mod:`harness.store`,
:mod:`harness.scenario`, :mod:`harness.errors`.
"""
