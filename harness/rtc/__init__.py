"""Where the harness bends its dependencies: aiortc/aioice adjustments and socket I/O.

Each module is one bend, documented where it is made: ICE host-candidate pinning (``ice``), datagram reads
with arrival times and larger receive buffers (``netio``, ``rtcparrival``, ``udpstats``), a bounded jitter
buffer (``jitter``), REMB (``remb``), the RTP/NTP clock (``ntpclock``), SDES parsing (``sdes``). See ``docs/bends.md``.

May import: nothing else of the harness (only aiortc, aioice and the standard library), so every layer that
runs media can use it.
"""
