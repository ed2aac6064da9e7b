"""Faults planned in scenarios, carried out by the controller, and recovery computed from a run's events.

Unit tests: the recovery analysis on hand-made tables, the timeline's parsing, :class:`ServerFaults` with a
fake system. The run on real servers is ``tests/test_outage_run.py``.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pandas as pd
import pytest

from harness.analysis.outages import faults, recovery
from harness.errors import ScenarioError, SystemError_
from harness.orchestrate.faults import ServerFaults, check_support
from harness.scenario.faults import ServerFault
from harness.scenario.network import outages, parse_profile
from harness.scenario.scenario import parse_scenario, scenario_from_dict
from harness.systems.base import Session, SessionContext, System

T0 = 1_800_000_000.0


def _events(rows: list[tuple[float, str, str | None, dict[str, Any]]]) -> pd.DataFrame:
    return pd.DataFrame([{"ts": T0 + t, "kind": k, "participant": p, "detail": json.dumps(d)} for t, k, p, d in rows])


def _streams(pairs: list[tuple[str, str]], until: float) -> pd.DataFrame:
    rows = [{"ts": T0 + t, "participant": r, "peer": s, "direction": "in", "kind": "video", "packets": 30}
            for r, s in pairs for t in range(1, int(until))]
    return pd.DataFrame(rows)


JOINS = pd.DataFrame({"participant": ["a", "b", "c"], "group": ["roaming", "office", "office"]})
PAIRS = [(r, s) for r in "abc" for s in "abc" if r != s]


def test_outage_recovery_per_stream_from_the_end_of_the_outage() -> None:
    events = _events([
        # the starting shapes, recorded late by a busy recorder: not the end of the outage
        (12, "network_change", None, {"group": "roaming", "at_s": 0, "outage": False}),
        (10, "network_change", None, {"group": "roaming", "at_s": 10, "outage": True}),
        (15, "network_change", None, {"group": "roaming", "at_s": 15, "outage": False}),
        (15.4, "media_resumed", "a", {"sender": "b", "gap_ms": 5400}),
        (15.6, "media_resumed", "b", {"sender": "a", "gap_ms": 5600}),
        (16.0, "media_resumed", "c", {"sender": "a", "gap_ms": 6000}),
        # a freeze long after the outage is not its recovery
        (40.0, "media_resumed", "a", {"sender": "c", "gap_ms": 1500}),
    ])
    out = recovery(events, _streams(PAIRS, 50), JOINS, run_start=T0, run_end=T0 + 50)
    (fault,) = out["faults"]
    assert (fault["kind"], fault["group"], fault["at_s"], fault["length_s"]) == ("outage", "roaming", 10, 5)
    # Streams to and from the cut participant: a<-b, a<-c, b<-a, c<-a; b<->c are not affected.
    assert fault["streams"] == 4
    by_pair = {(s["receiver"], s["sender"]): s["recovery_ms"] for s in fault["per_stream"]}
    assert by_pair == {("a", "b"): 400.0, ("a", "c"): None, ("b", "a"): 600.0, ("c", "a"): 1000.0}
    assert fault["recovered"] == 3 and fault["unrecovered"] == 1
    assert fault["recovery_ms"] == {"p50": 600.0, "max": 1000.0}
    assert out["recovery_ms_max"] == 1000.0 and out["dropped"] == 0


def test_server_restart_with_reconnections_and_a_dropped_participant() -> None:
    events = _events([
        (20.0, "server_restart", None, {"at_s": 18, "killed_ts": T0 + 18, "ok": True, "down_ms": 2000}),
        (27.0, "connection_lost", "a", {"reason": "no receiver report for 8.0 s"}),
        (27.1, "reconnected", "a", {"took_ms": 100.0, "attempts": 1}),
        (27.3, "reconnected", "b", {"took_ms": 300.0, "attempts": 2}),
        (27.5, "media_started", "a", {"sender": "b"}),
        (27.6, "media_started", "b", {"sender": "a"}),
        (48.0, "reconnect_failed", "c", {"attempts": 20, "error": "refused"}),
    ])
    out = recovery(events, _streams(PAIRS, 18), JOINS, run_start=T0)
    (fault,) = out["faults"]
    assert fault["kind"] == "server_restart" and fault["at_s"] == 18 and fault["length_s"] == 2
    assert fault["streams"] == 6 and fault["recovered"] == 2
    assert fault["recovery_ms"] == {"p50": 7550.0, "max": 7600.0}
    assert fault["reconnected"] == 2 and fault["reconnect_ms"] == {"p50": 200.0, "max": 300.0}
    assert fault["dropped"] == ["c"] and out["dropped"] == 1 and out["unrecovered"] == 4


def test_no_fault_gives_nulls_and_a_kill_never_ends() -> None:
    empty = recovery(_events([]), _streams(PAIRS, 5), JOINS)
    assert empty == {"faults": [], "recovery_ms_max": None, "reconnect_ms_max": None, "unrecovered": None,
                     "dropped": None}
    (kill,) = faults(_events([(30.0, "server_kill", None, {"at_s": 30})]))
    assert kill.end is None and kill.label == "server kill"


def test_outage_steps_parse_and_round_trip() -> None:
    profile = parse_profile({"delay_ms": 20, "timeline": [{"at_s": 10, "outage_s": 5}]})
    assert outages(profile) == [(10.0, 15.0)]
    up, down = profile.at(12)
    assert up.loss_pct == down.loss_pct == 100 and up.delay_ms == 20
    assert profile.at(15)[0].loss_pct == 0
    assert parse_profile(profile.to_dict()) == profile


@pytest.mark.parametrize(("timeline", "message"), [
    ([{"at_s": 5, "server": "reboot"}], "timeline[0].server: must be one of restart, kill"),
    ([{"at_s": 5}], "timeline[0]: needs at_s and server"),
    ([{"at_s": 5, "server": "kill", "down_s": 3}], "timeline[0].down_s: only a restart has a down time"),
    ([{"at_s": 5, "server": "restart", "down_s": 10}, {"at_s": 8, "server": "restart"}], "keeps the server down"),
    ([{"at_s": -1, "server": "kill"}], "timeline[0].at_s: must be between 0"),
    ([{"at_s": 5, "outage_s": 2}], "outage_s in [[groups.network.timeline]]"),
    ("restart", "timeline: must be a list"),
])
def test_bad_timelines_are_one_line_errors(timeline: Any, message: str) -> None:
    with pytest.raises(ScenarioError, match=None) as info:
        parse_scenario({"name": "x", "groups": [{"name": "a", "count": 1}], "timeline": timeline})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_scenario_with_faults_round_trips() -> None:
    scenario = parse_scenario({"name": "x", "groups": [{"name": "a", "count": 1}], "reconnect_after_s": 4,
                               "timeline": [{"at_s": 9, "server": "kill"}, {"at_s": 5, "server": "restart"}]})
    assert [f.at_s for f in scenario.timeline] == [5, 9]
    assert scenario_from_dict(scenario.to_dict()) == scenario


class _FakeSystem(System):
    name = "fake"

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.calls: list[tuple[str, float]] = []
        self.fail = fail
        self.inside = threading.Event()

    def session(self, ctx: SessionContext) -> Session:
        raise NotImplementedError

    def server_fault(self, action: str, down_s: float = 0.0) -> tuple[int, ...]:
        self.calls.append((action, down_s))
        self.inside.set()
        time.sleep(0.2)
        if self.fail:
            raise SystemError_("it would not start")
        return () if action == "kill" else (4242,)


def test_server_faults_run_on_time_and_record_events() -> None:
    system = _FakeSystem()
    rows: list[dict[str, Any]] = []
    followed: list[tuple[int, ...]] = []
    faults_ = ServerFaults(system, [ServerFault(0.3, "restart", 0.5), ServerFault(1.2, "kill")], (100,),
                           time.time(), rows.extend, followed.append)
    faults_.start()
    assert system.inside.wait(5)
    assert faults_.watched() == ()  # down on purpose: the run must not take it for a crash
    deadline = time.monotonic() + 10
    while len(rows) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert faults_.stop() == []
    assert system.calls == [("restart", 0.5), ("kill", 0.0)]
    assert [r["kind"] for r in rows] == ["server_restart", "server_kill"]
    assert rows[0]["detail"]["ok"] is True and rows[0]["detail"]["down_ms"] >= 0
    assert followed == [(4242,), ()]
    assert faults_.watched() == ()  # killed for good


def test_a_restart_that_fails_is_an_error_of_the_run() -> None:
    rows: list[dict[str, Any]] = []
    faults_ = ServerFaults(_FakeSystem(fail=True), [ServerFault(0.0, "restart")], (100,), time.time(), rows.extend)
    faults_.start()
    deadline = time.monotonic() + 10
    while not rows and time.monotonic() < deadline:
        time.sleep(0.05)
    errors = faults_.stop()
    assert errors == ["server restart at 0 s failed: it would not start"]
    assert rows[0]["detail"]["ok"] is False


def test_faults_need_a_server_confbench_started() -> None:
    from harness.systems.p2p import P2PSystem
    from harness.systems.reference import ReferenceSystem

    plan = [ServerFault(5.0, "restart")]
    with pytest.raises(SystemError_, match="has no server confbench could restart"):
        check_support(P2PSystem(), plan, None)
    with pytest.raises(SystemError_, match="only do that to a server it started"):
        check_support(ReferenceSystem("http://127.0.0.1:9/"), plan, "http://127.0.0.1:9/")
    check_support(ReferenceSystem(), plan, None)
    check_support(P2PSystem(), [], None)
