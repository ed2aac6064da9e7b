"""The media host and the native participants it hosts.

``media_host`` is the plain-asyncio process (one per Locust process, no gevent inside) that hosts many
participants; ``participant`` is one native (aiortc) participant. Browser participants live next door in
:mod:`harness.browser`, which is the same layer.

May import: :mod:`harness.browser`, :mod:`harness.systems`, :mod:`harness.reference`, :mod:`harness.testbed`,
:mod:`harness.media`, :mod:`harness.rtc`, :mod:`harness.probes`, :mod:`harness.analysis`,
:mod:`harness.store`, :mod:`harness.scenario`, :mod:`harness.errors`. Never :mod:`harness.loadgen` (which
imports Locust) nor anything above it: the Locust side talks to the media host over a pipe.
"""
