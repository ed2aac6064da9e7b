"""Browser participants: real Chromium, driven by Playwright, joining a web app like a person.

``chromium`` launches one browser per participant; ``inject`` builds the in-page instrument (``media.js``);
``platform`` describes how to join a web app; ``participant`` is the engine the media host runs; ``stats``
maps what the page measured onto the rows of ``docs/results.md``.
"""
