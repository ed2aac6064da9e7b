"""Synthetic media: sources that participants publish and the readers that measure what arrives.

- :mod:`.stamp` — the frame stamp, a block code in the luma plane (stream id, frame number, capture time).
- :mod:`.video` — ``VideoSource``, a paced, stamped, moving picture; ``read_frame`` on the receiving side.
- :mod:`.audio` — ``AudioSource``, silence with tone bursts on a wall-clock grid; ``PulseDetector``.
- :mod:`.fanout` — ``FanOut``, one source feeding one aiortc track per sender.

Nothing is re-exported here on purpose: ``stamp`` needs only NumPy, and importing it (e.g. from analysis code)
should not drag in aiortc and PyAV.

May import: :mod:`harness.rtc`, :mod:`harness.probes`, :mod:`harness.analysis`, :mod:`harness.store`,
:mod:`harness.scenario`, :mod:`harness.errors` (today only the scenario).
"""
