"""Active speakers and screen share on a real LiveKit server (built from its Go module), over real WebRTC.

LiveKit detects who speaks from the ssrc-audio-level header extension and tells every participant in a
``SpeakersChanged`` message; the ``livekit`` adapter records them as ``system_speakers`` events when the
scenario has a speaker pattern. A screen share is a publisher of its own that its owner declines to receive.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from helpers import ListSink
from test_livekit import keys  # noqa: F401 - the fixture

from harness.host.participant import Participant, ParticipantSpec
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import AudioSettings, ScreenSettings
from harness.systems.livekit import LiveKitSystem
from harness.testbed.livekit import LocalLiveKit

pytestmark = pytest.mark.integration

SWITCH_S = 3


def test_livekit_says_who_speaks_and_carries_a_screen(keys: LocalLiveKit) -> None:  # noqa: F811
    audio = AudioSettings(speakers="round-robin", speaker_switch_s=SWITCH_S)
    screen = ScreenSettings(width=640, height=360, fps=5, bitrate_kbps=300)

    async def call() -> ListSink:
        pin_host_addresses([keys.host_address])
        system = LiveKitSystem(keys.ws_url)
        sink = ListSink()
        people = [Participant(ParticipantSpec(name=f"s{i}", group="g", index=i, room="speakers", publish=("audio",),
                                              audio=audio, speaker_seats=2, screen=screen, screen_share=i == 0),
                              system, sink) for i in range(2)]
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
    turns = sorted((e["ts"], e["participant"]) for e in events if e["kind"] == "speaking_started")
    assert {who for _, who in turns} == {"s0", "s1"}
    said = [(e["ts"], e["participant"], json.loads(e["detail"])) for e in events if e["kind"] == "system_speakers"]
    assert said, "LiveKit sent no speaker update"
    # LiveKit names the participant whose turn it is, alone, soon after the turn starts (its detection smooths
    # over about half a second); each participant hears it, and only changes are recorded.
    end = min(e["ts"] for e in events if e["kind"] == "speaking_stopped" and e["detail"] == "left")
    checked = [(ts, who) for ts, who in turns[1:] if ts + 2.0 < end]  # the first may precede the listeners
    assert checked
    for ts, who in checked:
        for observer in ("s0", "s1"):
            heard = [(t, active) for t, o, active in said if o == observer and ts < t < ts + SWITCH_S]
            assert heard and heard[-1][1] == [who], (observer, ts, who, heard)
    for observer in ("s0", "s1"):
        mine = [active for _, o, active in said if o == observer]
        assert all(a != b for a, b in zip(mine, mine[1:], strict=False))
    # s1 receives s0's screen; s0 does not receive its own.
    screen_frames = [f for f in sink.rows["frames"] if f.get("source") == "screen"]
    assert {f["receiver"] for f in screen_frames} == {"s1"} and {f["sender"] for f in screen_frames} == {"s0-screen"}
    assert len(screen_frames) > 5 * 2 * SWITCH_S
    assert not [s for s in sink.rows["streams"] if s["participant"] == "s0" and s["peer"] == "s0-screen"]
