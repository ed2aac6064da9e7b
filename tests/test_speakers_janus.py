"""Active speakers on a real Janus: the round-robin pattern's audio levels reach Janus, which says who talks.

Janus VideoRoom emits ``talking`` / ``stopped-talking`` when a room has ``audiolevel_event`` and publishers send
the ssrc-audio-level RTP header extension; the harness's shared Opus encoder writes that extension, and the
``janus`` adapter creates the room with the events on when the scenario has a speaker pattern.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from helpers import ListSink

from harness.host.participant import Participant, ParticipantSpec
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import AudioSettings
from harness.systems.janus import JanusSystem
from harness.testbed.janus import LocalJanus

pytestmark = pytest.mark.integration

SWITCH_S = 3


LAG_S = 1.5
"""How late a talking event may name the previous turn's speaker: Janus's 1 s window, and a loaded machine."""


def test_janus_says_who_talks_in_turn(local_janus: LocalJanus) -> None:
    audio = AudioSettings(speakers="round-robin", speaker_switch_s=SWITCH_S)

    async def call() -> ListSink:
        pin_host_addresses([local_janus.host_address])
        system = JanusSystem(local_janus.ws_url)
        sink = ListSink()
        people = [Participant(ParticipantSpec(name=f"s{i}", group="g", index=i, room="speakers", publish=("audio",),
                                              audio=audio, speaker_seats=2), system, sink) for i in range(2)]
        try:
            for p in people:
                assert (await p.join())["ok"]
            await asyncio.sleep(4 * SWITCH_S)
        finally:
            await asyncio.gather(*(p.leave() for p in people))
            await system.close()
            pin_host_addresses(None)
        return sink

    sink = asyncio.run(call())
    events = sink.rows["events"]
    turns = [(e["ts"], e["participant"]) for e in events if e["kind"] == "speaking_started"]
    assert {who for _, who in turns} == {"s0", "s1"}  # both had a turn in four slots
    talking = [(e["ts"], json.loads(e["detail"])["participant"]) for e in events if e["kind"] == "system_talking"]
    assert talking, "Janus sent no talking event"
    # Each talking event names the participant whose turn it is, or was just before: Janus averages the levels
    # over its window of 50 packets (1 s), so its event may come a little after the turn changed.
    # Turns follow the clock's slots, so the first may be short: every turn held during the last LAG_S counts.
    for ts, who in talking:
        then = max((t for t in turns if t[0] <= ts - LAG_S), default=None)
        since = [t for t in turns if ts - LAG_S < t[0] <= ts]
        assert who in {t[1] for t in [then, *since] if t is not None}, (ts, who, turns)
    # The others hear of it too: every participant receives the room's talking events.
    assert {e["participant"] for e in events if e["kind"] == "system_talking"} == {"s0", "s1"}
