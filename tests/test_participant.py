"""The participant engine over real WebRTC on loopback (p2p system, real VP8/Opus, no mocked connections)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from helpers import ListSink

from harness.host.participant import Participant, ParticipantSpec
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import VideoSettings
from harness.systems.p2p import P2PSystem

pytestmark = pytest.mark.integration


async def meeting(n: int, seconds: float, **spec_kw: Any) -> ListSink:
    pin_host_addresses(["127.0.0.1"])
    system = P2PSystem()
    sink = ListSink()
    people = [
        Participant(ParticipantSpec(name=f"p{i}", group="g", index=i, room="r",
                                    video=VideoSettings(width=320, height=180, fps=15), **spec_kw),
                    system, sink)
        for i in range(n)
    ]
    try:
        for p in people:
            row = await p.join()
            assert row["ok"], row
        await asyncio.sleep(seconds)
    finally:
        await asyncio.gather(*(p.leave() for p in people))
        pin_host_addresses(None)
    return sink


def test_three_party_mesh_measures_everything() -> None:
    sink = asyncio.run(meeting(3, 5.0))
    joins = sink.rows["joins"]
    assert len(joins) == 3 and all(j["ok"] for j in joins)
    # Everyone but the first had peers to connect to, so ICE took real time; nobody waited for ever.
    assert all(0 < j["join_ms"] < 20000 for j in joins)
    # The first joined an empty room: it has no first frame of its own; the others saw one quickly.
    by_name = {j["participant"]: j for j in joins}
    assert by_name["p0"].get("first_frame_ms") is None
    assert all(0 < by_name[n]["first_frame_ms"] < 5000 for n in ("p1", "p2"))

    frames = sink.rows["frames"]
    pairs = {(f["receiver"], f["sender"]) for f in frames}
    assert pairs == {(a, b) for a in ("p0", "p1", "p2") for b in ("p0", "p1", "p2") if a != b}
    latencies = sorted(f["latency_ms"] for f in frames)
    assert len(latencies) > 6 * 15 * 2  # 6 streams, 15 fps, at least 2 of the 5 seconds
    median = latencies[len(latencies) // 2]
    assert 0 < median < 500  # loopback: encode + decode + scheduling
    # Stamps identify the sender: stream id 2*index for video.
    assert all(f["stream_id"] == 2 * int(f["sender"][1:]) for f in frames)

    streams = sink.rows["streams"]
    video_in = [s for s in streams if s["direction"] == "in" and s["kind"] == "video"]
    assert video_in and sum(s["packets"] for s in video_in) > 0
    assert sum(s["packets_lost"] for s in video_in) == 0
    assert max(s["fps"] for s in video_in) >= 10
    assert all(s["jitter_ms"] is not None and s["jitter_ms"] >= 0 for s in video_in)
    out = [s for s in streams if s["direction"] == "out"]
    rtts = [s["rtt_ms"] for s in out if s["rtt_ms"] is not None]
    assert rtts and all(0 <= r < 200 for r in rtts)  # RTCP round trips on loopback
    assert sum(s["bitrate_kbps"] for s in out if s["kind"] == "video") > 0

    audio = sink.rows["audio"]
    assert len(audio) >= 6  # one pulse per second per stream, 6 streams, some seconds
    assert all(0 <= a["latency_ms"] < 1000 for a in audio)


def test_receive_only_participant_sends_nothing() -> None:
    async def run() -> ListSink:
        pin_host_addresses(["127.0.0.1"])
        system = P2PSystem()
        sink = ListSink()
        talker = Participant(ParticipantSpec(name="talker", group="g", index=0, room="r",
                                             video=VideoSettings(width=320, height=180, fps=15)), system, sink)
        viewer = Participant(ParticipantSpec(name="viewer", group="v", index=1, room="r", publish=()),
                             system, sink)
        try:
            assert (await talker.join())["ok"]
            assert (await viewer.join())["ok"]
            await asyncio.sleep(3)
        finally:
            await asyncio.gather(talker.leave(), viewer.leave())
            pin_host_addresses(None)
        return sink

    sink = asyncio.run(run())
    assert {(f["receiver"], f["sender"]) for f in sink.rows["frames"]} == {("viewer", "talker")}


def test_h264_meeting_reads_stamps() -> None:
    """The scenario's codec reaches the wire: H.264 negotiated, encoded once per publisher, stamps intact."""

    async def run() -> tuple[ListSink, list[str]]:
        pin_host_addresses(["127.0.0.1"])
        system = P2PSystem()
        sink = ListSink()
        video = VideoSettings(width=320, height=180, fps=15, codec="H264", bitrate_kbps=600)
        people = [Participant(ParticipantSpec(name=f"h{i}", group="g", index=i, room="h264", video=video),
                              system, sink) for i in range(2)]
        try:
            for p in people:
                assert (await p.join())["ok"]
            await asyncio.sleep(3)
            sdp = [pc.remoteDescription.sdp for _, pc in people[0]._pcs]
            mimes = ["video/H264" if "H264/90000" in d and "VP8/90000" not in d else "other" for d in sdp]
        finally:
            await asyncio.gather(*(p.leave() for p in people))
            pin_host_addresses(None)
        return sink, mimes

    sink, mimes = asyncio.run(run())
    assert mimes == ["video/H264"]
    frames = sink.rows["frames"]
    assert len(frames) > 2 * 15 * 1.5
    assert {f["sender"] for f in frames} == {"h0", "h1"}


def test_undecoded_streams_still_measure_rate_and_rtp() -> None:
    """probe_fraction = 0: nothing is decoded, yet frame rate, freezes, packets, loss and jitter are measured."""
    sink = asyncio.run(meeting(3, 4.0, probe_fraction=0.0))
    assert sink.rows["frames"] == [] and sink.rows["audio"] == []  # no stamp or pulse was read
    video_in = [s for s in sink.rows["streams"] if s["direction"] == "in" and s["kind"] == "video"]
    rates = [s["fps"] for s in video_in if s["fps"] is not None]
    assert rates and max(rates) >= 12  # 15 fps sources, counted from complete encoded frames
    assert sum(s["packets"] for s in video_in) > 0 and sum(s["packets_lost"] for s in video_in) == 0
    by_name = {j["participant"]: j for j in sink.rows["joins"]}
    assert all(0 < by_name[n]["first_frame_ms"] < 5000 for n in ("p1", "p2"))


def test_probe_choice_is_stable_and_follows_the_fraction() -> None:
    from harness.host.participant import Participant as P

    def probes(fraction: float) -> list[bool]:
        p = P(ParticipantSpec(name="r", group="g", index=0, room="x", probe_fraction=fraction), P2PSystem(),
              ListSink())
        return [p.is_probe(f"s{i}") for i in range(400)]

    assert all(probes(1.0)) and not any(probes(0.0))
    share = sum(probes(0.25)) / 400
    assert 0.15 < share < 0.35
    assert probes(0.25) == probes(0.25)  # the same pair always decides the same way
    designated = P(ParticipantSpec(name="r", group="g", index=0, room="x", probe_fraction=0.0), P2PSystem(),
                   ListSink())
    designated.designate("s7")
    assert designated.is_probe("s7") and not designated.is_probe("s8")  # its designated sender only


def test_receive_only_participants_do_not_connect_to_each_other() -> None:
    """p2p connects only pairs that exchange media: two viewers of one talker have no connection between them."""

    async def run() -> dict[str, list[str]]:
        pin_host_addresses(["127.0.0.1"])
        system = P2PSystem()
        sink = ListSink()
        video = VideoSettings(width=320, height=180, fps=15)
        talker = Participant(ParticipantSpec(name="talker", group="g", index=0, room="r", publish=("video",),
                                             subscribe=False, video=video), system, sink)
        viewers = [Participant(ParticipantSpec(name=f"v{i}", group="v", index=1 + i, room="r", publish=()),
                               system, sink) for i in range(2)]
        try:
            for p in (viewers[0], talker, viewers[1]):
                assert (await p.join())["ok"]
            await asyncio.sleep(2)
            return {p.spec.name: [remote for remote, _ in p._pcs] for p in (talker, *viewers)}
        finally:
            await asyncio.gather(talker.leave(), *(v.leave() for v in viewers))
            pin_host_addresses(None)

    pcs = asyncio.run(run())
    assert sorted(pcs["talker"]) == ["v0", "v1"] and pcs["v0"] == ["talker"] and pcs["v1"] == ["talker"]


def test_publishers_share_one_encoder() -> None:
    """publishers_per_encoder: three publishers send one encoded stream; a viewer gets it from each of them."""
    from harness.media.pool import EncoderPool

    async def run() -> tuple[ListSink, int]:
        pin_host_addresses(["127.0.0.1"])
        system = P2PSystem()
        sink = ListSink()
        pool = EncoderPool()
        video = VideoSettings(width=320, height=180, fps=15)
        talkers = [Participant(ParticipantSpec(name=f"t{i}", group="t", index=i, room="r", subscribe=False,
                                               video=video, publishers_per_encoder=3), system, sink, pool=pool)
                   for i in range(3)]
        viewer = Participant(ParticipantSpec(name="viewer", group="v", index=9, room="r", publish=()),
                             system, sink)
        try:
            for p in (*talkers, viewer):
                assert (await p.join())["ok"]
            slots = pool.slots
            await asyncio.sleep(3)
        finally:
            await asyncio.gather(viewer.leave(), *(t.leave() for t in talkers))
            pin_host_addresses(None)
        return sink, slots

    sink, slots = asyncio.run(run())
    assert slots == 1
    frames = sink.rows["frames"]
    assert {f["sender"] for f in frames} == {"t0", "t1", "t2"}
    assert {f["stream_id"] for f in frames} == {0}  # the slot's first publisher's stream id
    per_sender = {s: sum(f["sender"] == s for f in frames) for s in ("t0", "t1", "t2")}
    assert min(per_sender.values()) > 15 * 1.5


def test_a_participant_that_stays_keeps_no_closed_connection() -> None:
    """Others come and go (p2p: a connection per peer); a participant that stays drops what it kept of each
    connection once it closes (its decoders and buffers with it: benchmarks/churn.py saw the media host's memory
    grow with every participant that left)."""

    async def run() -> tuple[int, int, int]:
        pin_host_addresses(["127.0.0.1"])
        system = P2PSystem()
        sink = ListSink()
        video = VideoSettings(width=160, height=90, fps=10)
        stayer = Participant(ParticipantSpec(name="stay", group="g", index=0, room="churn", video=video),
                             system, sink)
        try:
            assert (await stayer.join())["ok"]
            for i in range(1, 4):
                guest = Participant(ParticipantSpec(name=f"guest{i}", group="g", index=i, room="churn", video=video),
                                    system, sink)
                assert (await guest.join())["ok"]
                await asyncio.sleep(2)
                await guest.leave()
                await asyncio.sleep(2)  # the broker tells the stayer; its connection to the guest closes
            kept = [pc for _, pc in stayer._pcs]
            return len(kept), sum(pc.connectionState == "closed" for pc in kept), len(stayer._ssrc)
        finally:
            await stayer.leave()
            pin_host_addresses(None)

    kept, closed, ssrc_states = asyncio.run(run())
    assert closed == 0 and kept == 0, (kept, closed)
    assert ssrc_states == 0
