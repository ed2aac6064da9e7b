"""Analysis: pure functions from results to figures and verdicts.

Holds the headline figures (``summary``), the load generator's health (``health``), statistics (``stats``),
run sets and their comparison (``runset``, ``compare``, ``verdicts``), history and change points
(``history``, ``changepoint``), quality scores (``emodel``), JUnit output (``junit``) and the capacity
search's step logic (``capacity_steps``).

May import: :mod:`harness.store`, :mod:`harness.scenario`, :mod:`harness.errors`. Nothing here runs media,
starts a process or opens a socket, so any layer above may use it.
"""
