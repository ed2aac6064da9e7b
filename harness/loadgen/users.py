"""Locust User classes: one synthetic participant per Locust user, one class per scenario group.

A user does nothing per task: the participant lives in the media host and measures on its own. Locust owns
when participants come (spawn rate, ramp, shapes) and go, and shows join time and latency in its stats.
"""

from __future__ import annotations

import random
import time
from typing import Any, ClassVar

import gevent
from locust import User, constant, task

from harness.loadgen.plugin import STATE, join_participant, leave_participant
from harness.scenario.scenario import Group, Scenario


class ConferenceUser(User):
    """One participant of a scenario group (subclassed per group by :func:`user_classes`)."""

    abstract = True
    wait_time = constant(1)
    group: ClassVar[Group]
    scenario: ClassVar[Scenario]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.participant: str | None = None
        self.leave_at: float | None = None
        self.joined_once = False

    def on_start(self) -> None:
        """Join the room through this process's media host (the join is fired as a Locust request)."""
        if self.group.join_delay_s:
            gevent.sleep(self.group.join_delay_s)  # a late joiner (scenario key join_delay_s)
        self._join()

    def _join(self) -> None:
        # The media host bounds the join itself; the extra margin covers its start-up on first use.
        first = not self.joined_once
        self.participant, _ = join_participant(self.group.name, timeout=self.scenario.join_timeout_s + 60)
        self.joined_once = True
        if self.group.stay_s is not None:
            stay = self.group.stay_s
            if self.group.rejoin and first:
                # The group's first participants joined within seconds of each other: with equal stays they
                # would all leave and be replaced at once, again and again. A random first stay spreads them.
                stay *= random.uniform(0.1, 1.0)
            self.leave_at = time.monotonic() + stay

    @task
    def stay(self) -> None:
        """Stay in the call (the media host measures), and leave once ``stay_s`` is over.

        An early leaver then stays idle until the run ends; with ``rejoin`` a newcomer (a new participant
        name, from the roster) joins in its place at once: churn.
        """
        if self.leave_at is not None and time.monotonic() >= self.leave_at:
            self.on_stop()
            self.leave_at = None
            if self.group.rejoin:
                self._join()
        gevent.sleep(0)

    def on_stop(self) -> None:
        """Leave the room."""
        if self.participant is not None:
            leave_participant(self.participant)
            self.participant = None


def user_classes(scenario: Scenario, proportional: bool = False) -> list[type[ConferenceUser]]:
    """One concrete User class per group, with Locust's ``fixed_count`` set to the group's size.

    ``proportional``: the group sizes become Locust weights instead, so that a shape may ask for any number
    of participants and get the groups in the scenario's proportions (the capacity search).
    """
    STATE.scenario = scenario
    classes = []
    for group in scenario.groups:
        if group.count == 0:
            continue
        # Locust starts fixed_count users first, then spreads the rest by weight: a group that does not grow
        # keeps its size at every step of a capacity search.
        grows = proportional and group.grow
        counts = {"weight": group.count, "fixed_count": 0} if grows else {"fixed_count": group.count}
        cls = type(f"Group_{group.name.replace('-', '_')}", (ConferenceUser,), {
            "abstract": False, **counts, "group": group, "scenario": scenario, "__module__": __name__,
        })
        classes.append(cls)
    return classes
