"""The capacity search's decisions (a fake clock and fake step verdicts), and its settings' validation."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.analysis.capacity_steps import CapacitySearch, StepPlan, StepResult
from harness.errors import ScenarioError
from harness.scenario.scenario import CapacitySettings, load_scenario


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_step(passes: Callable[[int], bool | None]) -> Callable[[StepPlan], StepResult]:
    """A step passes when ``passes(participants)`` is True, breaks the SLO when False, and is a saturated
    generator when None."""

    def evaluate(plan: StepPlan) -> StepResult:
        verdict = passes(plan.participants)
        slo = [{"expr": "video_latency_ms.p95 < 400", "value": 100 if verdict else 900, "ok": bool(verdict)}]
        health = ["load generator saturated"] if verdict is None else []
        return StepResult(plan, {}, slo, health, {"video": plan.participants * (plan.participants - 1),
                                                 "audio": 0})

    return evaluate


def run(passes: Callable[[int], bool | None], **settings: object) -> CapacitySearch:
    clock = Clock()
    search = CapacitySearch(CapacitySettings(**settings), planned=4, spawn_rate=2.0,  # type: ignore[arg-type]
                            join_timeout_s=20, evaluate=fake_step(passes), clock=clock)
    users = joins = 0
    for _ in range(100_000):
        wanted = search.tick(users, joins)
        if wanted is None:
            return search
        target, _rate = wanted
        joins += max(target - users, 0)  # every participant Locust starts joins at once in this fake
        users = target
        clock.now += 1.0
    raise AssertionError("the search never ended")


def levels(search: CapacitySearch) -> list[tuple[int, str, str]]:
    return [(s.plan.participants, s.plan.phase, s.verdict) for s in search.steps]


def test_knee_confirmed_by_a_step_back() -> None:
    search = run(lambda n: n <= 12)
    assert levels(search) == [(4, "ramp", "pass"), (8, "ramp", "pass"), (12, "ramp", "pass"),
                              (16, "ramp", "fail"), (12, "confirm", "pass")]
    assert search.result is not None and search.result["outcome"] == "found"
    assert search.result["capacity_participants"] == 12
    assert search.result["streams_forwarded"] == {"video": 132, "audio": 0}
    assert "broke at 16" in search.result["statement"]


def test_a_noisy_knee_steps_back_further() -> None:
    seen: list[int] = []

    def passes(n: int) -> bool:
        seen.append(n)
        return n <= 8 or (n == 12 and seen.count(12) == 1)  # 12 passes once, then not

    search = run(passes)
    assert levels(search)[-3:] == [(16, "ramp", "fail"), (12, "confirm", "fail"), (8, "confirm", "pass")]
    assert search.result is not None and search.result["capacity_participants"] == 8


def test_the_generator_limit_is_no_capacity() -> None:
    search = run(lambda n: None if n >= 8 else True)
    assert search.result is not None and search.result["outcome"] == "generator_limited"
    assert search.result["capacity_participants"] is None
    assert "load generator, not the system" in search.result["statement"]


def test_bounds_end_the_search() -> None:
    search = run(lambda n: True, max_participants=10)
    assert search.result is not None and search.result["outcome"] == "max_reached"
    assert search.result["capacity_participants"] == 8  # 12 would exceed 10
    timed = run(lambda n: True, max_duration_s=100, step_s=20)
    assert timed.result is not None and timed.result["outcome"] == "time_limit"
    assert timed.result["capacity_participants"] == max(s.plan.participants for s in timed.steps)
    first = run(lambda n: False)
    assert first.result is not None and first.result["outcome"] == "below_start"
    assert first.result["capacity_participants"] is None


def test_a_knee_that_does_not_hold_is_unstable() -> None:
    calls: list[int] = []

    def passes(n: int) -> bool:
        calls.append(n)
        return n <= 8 and calls.count(n) == 1  # every level passes once only

    search = run(passes, step_backs=1)
    assert levels(search)[-2:] == [(12, "ramp", "fail"), (8, "confirm", "fail")]
    assert search.result is not None and search.result["outcome"] == "unstable"
    assert search.result["capacity_participants"] is None


def test_a_system_that_went_silent_is_said_so() -> None:
    """A server that collapsed and dropped its sessions: the step back finds no media at all."""
    def evaluate(plan: StepPlan) -> StepResult:
        ok = plan.participants <= 8 and plan.phase == "ramp"
        silent = plan.phase != "ramp"
        slo = [{"expr": "video_latency_ms.p95 < 400", "value": None if silent else (100 if ok else 900), "ok": ok}]
        return StepResult(plan, {}, slo, [], {"video": 0, "audio": 0} if silent else {"video": 12, "audio": 12})

    clock = Clock()
    search = CapacitySearch(CapacitySettings(step_backs=1), planned=4, spawn_rate=2.0, join_timeout_s=20,
                            evaluate=evaluate, clock=clock)
    users = joins = 0
    while (wanted := search.tick(users, joins)) is not None:
        joins += max(wanted[0] - users, 0)
        users = wanted[0]
        clock.now += 1.0
    assert search.result is not None and search.result["outcome"] == "unstable"
    assert "the system stopped forwarding and did not recover" in search.result["statement"]


def test_step_windows_follow_the_settings() -> None:
    search = run(lambda n: n <= 4, start=2, step=2, settle_s=3, step_s=10)
    first = search.steps[0].plan
    assert first.participants == 2 and first.window[1] - first.window[0] == 10
    assert first.window[0] - first.started >= 3  # settling after everyone joined


def test_capacity_section_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('name = "x"\n[[groups]]\nname = "a"\ncount = 2\n[capacity]\nstep = 2\n'
                    '[capacity.slo]\n"sut_cpu_pct.max" = "< 90"\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{path}: capacity.slo.sut_cpu_pct.max: cannot be judged per step")
    path.write_text('name = "x"\n[[groups]]\nname = "a"\ncount = 2\n[capacity]\nstep_backs = 99\n')
    with pytest.raises(ScenarioError, match="capacity: step_backs must be 0..10"):
        load_scenario(path)


USER_COUNTS = """
import json, sys
from harness.loadgen.users import user_classes
from harness.scenario.scenario import load_scenario
webinar = load_scenario(sys.argv[1])
print(json.dumps([{c.group.name: [c.fixed_count, c.weight] for c in user_classes(webinar, proportional=p)}
                  for p in (True, False)]))
"""


def test_a_group_that_does_not_grow_keeps_its_size(tmp_path: Path) -> None:
    # In a process of its own: importing Locust monkey-patches the whole interpreter (gevent).
    webinar = Path(__file__).resolve().parent.parent / "scenarios" / "capacity-webinar.toml"
    out = subprocess.run([sys.executable, "-c", USER_COUNTS, str(webinar)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    search, ordinary = json.loads(out.strip().splitlines()[-1])
    # Locust starts fixed_count users before it spreads the rest by weight: one presenter at every step.
    assert search["presenter"][0] == 1
    assert search["audience"] == [0, 10]
    # An ordinary run keeps every group at its count.
    assert {name: counts[0] for name, counts in ordinary.items()} == {"presenter": 1, "audience": 10}
    path = tmp_path / "s.toml"
    path.write_text('name = "x"\n[[groups]]\nname = "a"\ncount = 2\ngrow = false\n')
    with pytest.raises(ScenarioError, match="needs a group that grows"):
        load_scenario(path)
    path.write_text('name = "x"\n[[groups]]\nname = "a"\ncount = 2\ngrow = false\n'
                    '[[groups]]\nname = "b"\ncount = 2\n[capacity]\nstart = 2\n')
    with pytest.raises(ScenarioError, match=r"capacity.start \(2\) must exceed the 2 participants"):
        load_scenario(path)
