"""Round-robin speakers: the schedule, the speech-like sound, its level in RTP, and the scenario keys."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.errors import ScenarioError
from harness.host.participant import ParticipantSpec
from harness.media.audio import AudioSource, PulseDetector
from harness.media.speakers import SPEECH_AMPLITUDE, SpeakerSchedule, audio_level_dbov, speech
from harness.scenario.scenario import AudioSettings, ScreenSettings, parse_scenario


def test_one_seat_speaks_at_a_time_and_turns_go_round() -> None:
    seats = [SpeakerSchedule.for_index(5.0, 3, i) for i in range(3)]
    for t in np.arange(1_000_000.0, 1_000_060.0, 0.25):
        assert sum(s.speaking(float(t)) for s in seats) == 1
    # Every 5 s the next seat takes over, in order.
    order = [next(i for i, s in enumerate(seats) if s.speaking(1_000_000.0 + 5 * k + 1)) for k in range(6)]
    assert all((b - a) % 3 == 1 for a, b in zip(order, order[1:], strict=False))
    # next_change is where speaking flips, and nothing flips before it.
    s = seats[0]
    for t in (1_000_000.1, 1_000_007.3, 1_000_011.9):
        change = s.next_change(t)
        assert s.speaking(change) != s.speaking(t) or s.speaking(change - 1e-6) != s.speaking(change)
        assert all(s.speaking(x) == s.speaking(t) for x in np.linspace(t, change - 1e-3, 50))
    assert SpeakerSchedule.for_index(5.0, 1, 0).next_change(3.0) == math.inf
    with pytest.raises(ValueError):
        SpeakerSchedule(5.0, 2, 2)


def test_speech_is_loud_under_the_pulse_threshold_and_continuous() -> None:
    rate = 48000
    whole = speech(1000, 960 * 2, rate)
    halves = np.concatenate([speech(1000, 960, rate), speech(1960, 960, rate)])
    assert np.array_equal(whole, halves)  # frames join without a click
    assert np.max(np.abs(whole)) <= SPEECH_AMPLITUDE < 0.1  # under PulseDetector's default threshold
    level = audio_level_dbov(np.round(32767 * speech(0, rate, rate)).astype(np.int16))
    assert 20 <= level <= 35  # normal speech, far above silence
    assert audio_level_dbov(np.zeros(960, dtype=np.int16)) == 127


def test_the_speaker_s_microphone_talks_and_pulses_still_read() -> None:
    talking = AudioSource(1, speaking=lambda t: True)
    silent = AudioSource(3, speaking=lambda t: False)
    start = 48000 * 1_000_000 + 1440  # 30 ms after a pulse grid point: past the 20 ms pulse
    loud = talking.samples(start, 960 * 10)
    quiet = silent.samples(start, 960 * 10)
    assert audio_level_dbov(loud) < 40 and audio_level_dbov(quiet) == 127
    # Two seconds of the talker's audio, fed to the detector frame by frame: both pulses, on the grid.
    detector = PulseDetector(48000, 1.0)
    first = 48000 * 1_000_000 - 48000 // 2
    latencies = []
    for k in range(100):
        frame = talking.frame_at(first + k * 960)
        latencies += detector.feed(frame, (first + k * 960) / 48000)
    assert len(latencies) == 2 and all(abs(x) < 1.0 for x in latencies)


def test_participant_turns_follow_its_index_and_need_audio() -> None:
    audio = AudioSettings(speakers="round-robin", speaker_switch_s=2)
    spec = ParticipantSpec(name="g-4", group="g", index=4, room="r", audio=audio, speaker_seats=3)
    turns = spec.speakers()
    assert turns is not None and turns.seat == 1 and turns.switch_s == 2
    assert ParticipantSpec(name="g-4", group="g", index=4, room="r", audio=audio, publish=("video",)).speakers() is None
    assert ParticipantSpec(name="g-4", group="g", index=4, room="r").speakers() is None
    assert spec.screen_stream_id == 9 != spec.video_stream_id and spec.screen_name == "g-4-screen"


def test_scenario_keys_parse_and_leave_old_digests_alone() -> None:
    base = {"name": "x", "groups": [{"name": "a", "count": 2}]}
    plain = parse_scenario(base)
    assert "screen" not in plain.to_dict() and "speakers" not in plain.to_dict()["audio"]
    assert "screen_share" not in plain.to_dict()["groups"][0]
    explicit = parse_scenario({**base, "media": {"screen": {"width": 1920}, "audio": {"speakers": "none"}}})
    assert explicit.sha256() == plain.sha256()
    full = parse_scenario({"name": "x", "groups": [{"name": "a", "count": 2, "screen_share": True}],
                           "media": {"screen": {"fps": 3, "bitrate_kbps": 800},
                                     "audio": {"speakers": "round-robin", "speaker_switch_s": 4}}})
    assert full.screen == ScreenSettings(fps=3, bitrate_kbps=800) and full.groups[0].screen_share
    assert full.audio.speakers == "round-robin" and full.audio.speaker_switch_s == 4
    assert full.sha256() != plain.sha256()


@pytest.mark.parametrize(("media", "group", "words"), [
    ({"audio": {"speakers": "loudest"}}, {}, "media.audio: speakers must be one of none, round-robin"),
    ({"audio": {"speaker_switch_s": 0}}, {}, "media.audio: speaker_switch_s must be between"),
    ({"screen": {"fps": 0}}, {}, "media.screen: fps must be between"),
    ({"screen": {"depth": 8}}, {}, "media.screen.depth: unknown key"),
    ({}, {"screen_share": "yes"}, "groups[0].screen_share: must be true or false"),
    ({}, {"screen_share": True, "engine": "browser"}, "groups[0]: screen_share needs native participants"),
])
def test_bad_keys_name_the_field(media: dict, group: dict, words: str) -> None:
    with pytest.raises(ScenarioError, match=None) as info:
        parse_scenario({"name": "x", "media": media, "groups": [{"name": "a", "count": 1, **group}]}, "s.toml")
    assert words in str(info.value), str(info.value)


def test_audio_level_rides_in_the_header_extension() -> None:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    from harness.media.packetize import _HeaderTemplate

    class Sender:  # the two attributes of RTCRtpSender the template reads
        _RTCRtpSender__mid = "0"
        _RTCRtpSender__rtp_header_extensions_map = HeaderExtensionsMap()

    extensions = Sender._RTCRtpSender__rtp_header_extensions_map
    extensions.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")]))
    for level in (0, 27, 127):
        data = _HeaderTemplate(Sender(), 111, level).header(1, 5, 6, 7, 0x123456) + b"opus"
        parsed = RtpPacket.parse(data, extensions)
        assert parsed.extensions.audio_level == (False, level)
        assert parsed.extensions.abs_send_time == 0x123456 and parsed.extensions.mid == "0"


def test_turns_are_announced_as_they_come_and_a_cut_turn_ends_with_left() -> None:
    import asyncio
    import time

    from harness.media.speakers import announce_turns

    events: list[tuple[float, str, str]] = []
    turns = SpeakerSchedule(0.1, 2, 0)  # short turns: the schedule itself takes any length

    async def listen() -> None:
        task = asyncio.ensure_future(announce_turns(turns, time.time,
                                                    lambda kind, detail: events.append((time.time(), kind, detail))))
        await asyncio.sleep(0.55)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(listen())
    kinds = [k for _, k, _ in events]
    assert kinds.count("speaking_started") >= 2
    # Started and stopped alternate, each at its slot's edge (within the loop's timing).
    assert all(a != b for a, b in zip(kinds, kinds[1:], strict=False))
    for ts, kind, detail in events:
        if detail != "left":
            assert detail == f"slot {turns.slot(ts)}"
            assert turns.speaking(ts) == (kind == "speaking_started")
    assert kinds[-1] == "speaking_stopped"  # a turn in progress when cancelled is closed
