"""Probes: what the harness measures about processes and hosts rather than about media.

CPU and memory of processes (``probes``), a system's own Prometheus metrics (``prometheus``), child-process
hygiene (``procs``), host and harness facts for the manifest (``environment``) and the clock-sync state
(``clocksync``).

May import: :mod:`harness.scenario`, :mod:`harness.errors` and the package root (its version). Nothing here
runs media.
"""
