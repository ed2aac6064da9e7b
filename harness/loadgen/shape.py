"""The capacity search as a Locust ``LoadTestShape``: Locust ramps the users, the capacity search decides.

The shape runs on the Locust master (or the local runner), which writes the run's results: before a step
is judged the writer is flushed, and the step is read back from the folder in a thread of gevent's pool,
so the master keeps answering its workers while Parquet parts are read.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import gevent
from locust import LoadTestShape

from harness.analysis.capacity_steps import (
    CapacitySearch,
    StepPlan,
    StepResult,
    evaluate_step,
    settings_of,
    write_capacity,
)
from harness.loadgen.plugin import STATE
from harness.scenario.scenario import Scenario

log = logging.getLogger(__name__)


class CapacityShape(LoadTestShape):
    """Ramps participants in steps until the scenario's SLO breaks (subclassed per scenario by the locustfile)."""

    abstract = True
    scenario: ClassVar[Scenario]

    def __init__(self) -> None:
        super().__init__()
        self.search: CapacitySearch | None = None

    def tick(self) -> tuple[int, float] | None:
        """The participants wanted now, or None to end the run."""
        if STATE.run_dir is None or self.runner is None:
            return None
        if self.search is None:
            self.search = CapacitySearch(
                settings=settings_of(self.scenario), planned=self.scenario.participants,
                spawn_rate=self.scenario.spawn_rate, join_timeout_s=self.scenario.join_timeout_s,
                evaluate=self._evaluate, on_change=self._record)
        join = self.runner.stats.entries.get(("join", "JOIN"))
        return self.search.tick(self.runner.user_count, int(join.num_requests) if join else 0)

    def _evaluate(self, plan: StepPlan) -> StepResult:
        assert STATE.run_dir is not None
        if STATE.writer is not None:
            STATE.writer.flush()
        run_dir = STATE.run_dir
        result: StepResult = gevent.get_hub().threadpool.apply(
            evaluate_step, (run_dir, plan, settings_of(self.scenario)))
        log.info("capacity step %d (%d participants, %s): %s", plan.index, plan.participants, plan.phase,
                 result.verdict)
        return result

    def _record(self, search: CapacitySearch) -> None:
        STATE.progress_extra["capacity"] = search.status
        if STATE.run_dir is not None:
            try:
                write_capacity(STATE.run_dir, search)
            except OSError:
                log.exception("writing capacity.json failed")


def shape_for(scenario: Scenario) -> type[CapacityShape]:
    """A concrete shape class for ``scenario`` (Locust instantiates shape classes it finds in the locustfile)."""
    attrs: dict[str, Any] = {"abstract": False, "scenario": scenario, "__module__": __name__}
    return type("CapacitySearchShape", (CapacityShape,), attrs)
