"""Orchestration: a run from start to finish.

``run`` executes a scenario against one system (start/stop order, the manifest's status); ``lifecycle``
opens and closes a run's results folder; ``direct`` does the same for a run started by plain ``locust``;
``capacity`` drives a capacity search; ``calibration`` and ``measuring_call`` measure the instrument's floor.

May import every layer below it: :mod:`harness.loadgen`, :mod:`harness.host`, :mod:`harness.browser`,
:mod:`harness.systems`, :mod:`harness.reference`, :mod:`harness.testbed`, :mod:`harness.media`,
:mod:`harness.rtc`, :mod:`harness.probes`, :mod:`harness.analysis`, :mod:`harness.store`,
:mod:`harness.scenario`, :mod:`harness.errors`. Only the entry points (:mod:`harness.cli`,
:mod:`harness.pytest_plugin`, the locustfiles) import it.
"""
