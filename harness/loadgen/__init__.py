"""Load generation: the only package that imports Locust.

User classes (``users``), the capacity search's load shape (``shape``), the harness's Locust hooks and sample
path (``plugin``), the roster of participants (``roster``), the locustfiles (``locustfile``, ``runfile``) and
the client side of the media host's pipe (``host_client``).

May import: :mod:`harness.systems`, :mod:`harness.testbed`, :mod:`harness.probes`, :mod:`harness.analysis`,
:mod:`harness.store`, :mod:`harness.scenario`, :mod:`harness.errors`. Never :mod:`harness.host` (the media host
is a process of its own, started with ``python -m``) nor :mod:`harness.orchestrate`; ``locustfile.py`` is an
entry point (Locust loads it by path) and may wire orchestration in.
"""
