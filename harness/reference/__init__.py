"""The built-in reference SFU server (aiortc, RTP forwarding, WHIP/WHEP signalling).

Same layer as :mod:`harness.systems`. May import: :mod:`harness.media`, :mod:`harness.rtc`,
:mod:`harness.probes`, :mod:`harness.errors` and the package root (its version).
"""
