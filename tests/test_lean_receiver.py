"""The lean receive path (harness/rtc/lean_receiver.py): its frame rules on fakes, and agreement with aiortc's
path on the same packets of a real WebRTC stream behind a lossy, jittery link."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.stats import RTCRemoteInboundRtpStreamStats

from harness.media.encoder import SharedVideoEncoder
from harness.media.tap import count_received, inbound_counts, receiver_of, tap
from harness.media.video import VideoSource
from harness.rtc import jitter, lean_receiver, netio, ntpclock, remb, rtcparrival
from harness.rtc.ice import pin_host_addresses
from harness.rtc.jitter import frame_flags
from harness.rtc.lean_frames import FLAG_MARKER, LeanFrames, LeanStatistics

VP8_KEY = bytes([0x10, 0x00])  # S bit, partition 0; VP8 payload header P bit 0: a key frame's start
VP8_DELTA = bytes([0x10, 0x01])
VP8_MORE = bytes([0x00, 0x00])


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _flags(payload: bytes, marker: bool) -> int:
    return frame_flags("video/vp8", payload, 0) | (FLAG_MARKER if marker else 0)


def test_payload_descriptors_give_frame_starts_and_key_frames() -> None:
    assert frame_flags("video/vp8", b"\x00" + VP8_KEY, 1) == jitter.FRAME_STARTS | jitter.FRAME_KEY
    assert frame_flags("video/vp8", VP8_DELTA, 0) == jitter.FRAME_STARTS
    assert frame_flags("video/vp8", VP8_MORE, 0) == 0
    assert frame_flags("video/h264", bytes([0x7C, 0x85]), 0) == jitter.FRAME_STARTS | jitter.FRAME_KEY  # FU-A IDR
    assert frame_flags("video/h264", bytes([0x7C, 0x41]), 0) == 0  # FU-A continuation


def test_frames_complete_on_the_marker_and_wait_for_a_key_frame() -> None:
    clock = _Clock()
    frames = LeanFrames(keyed=True, clock=clock)
    assert frames.add(10, 1000, _flags(VP8_DELTA, True)) == 0  # a delta frame first: not decodable
    assert frames.add(11, 2000, _flags(VP8_KEY, False)) == 0
    assert frames.add(12, 2000, _flags(VP8_MORE, True)) == 1
    assert frames.add(13, 3000, _flags(VP8_DELTA, True)) == 1
    assert frames.add(13, 3000, _flags(VP8_DELTA, True)) == 0  # a duplicate counts once


def test_a_gap_waits_then_drops_its_frame_asks_again_and_counts_unrepaired() -> None:
    clock = _Clock()
    frames = LeanFrames(keyed=True, clock=clock)
    assert frames.add(1, 1000, _flags(VP8_KEY, True)) == 1
    assert frames.add(3, 2000, _flags(VP8_MORE, True)) == 0  # 2 missing: frame 2000 waits
    assert frames.nacks() == [2]
    clock.now += 0.01
    assert frames.nacks() == []  # not yet due again
    clock.now += 0.1
    assert frames.nacks() == [2]
    clock.now += 1.0
    assert frames.add(4, 3000, _flags(VP8_DELTA, True)) == 0  # gap timed out: dropped, delta undecodable
    assert frames.unrepaired == 1 and frames.dropped == 2 and frames.want_pli
    assert frames.add(5, 4000, _flags(VP8_KEY, True)) == 1


def test_a_repaired_gap_completes_its_frame() -> None:
    clock = _Clock()
    frames = LeanFrames(keyed=True, clock=clock)
    frames.add(1, 1000, _flags(VP8_KEY, True))
    frames.add(3, 2000, _flags(VP8_MORE, True))
    assert frames.nacks() == [2]
    clock.now += 0.03
    assert frames.add(2, 2000, _flags(VP8_DELTA, False)) == 1
    assert frames.repaired == 1 and frames.unrepaired == 0


def test_a_complete_key_frame_behind_a_gap_is_counted_at_once() -> None:
    """``VideoPlayoutBuffer``'s rule: the frames before a complete key frame are dropped, without waiting."""
    clock = _Clock()
    frames = LeanFrames(keyed=True, clock=clock)
    assert frames.add(1, 1000, _flags(VP8_KEY, True)) == 1
    assert frames.add(3, 2000, _flags(VP8_MORE, True)) == 0  # seq 2 lost
    assert frames.add(4, 3000, _flags(VP8_KEY, False)) == 0
    assert frames.add(5, 3000, _flags(VP8_MORE, True)) == 1  # long before the gap's wait is over
    assert frames.dropped == 1 and frames.unrepaired == 1 and not frames.want_pli and frames.nacks() == []
    assert frames.add(6, 4000, _flags(VP8_DELTA, True)) == 1
    assert frames.add(2, 2000, _flags(VP8_DELTA, False)) == 0  # the late repair: ignored


def test_statistics_count_as_rfc3550() -> None:
    stats = LeanStatistics(90000)
    for seq in (65534, 65535, 1, 2):  # 0 lost, across the wrap
        stats.add(seq, seq * 3000, 1.0 + seq / 1000)
    assert stats.packets_received == 4 and stats.packets_lost == 1 and stats.cycles == 1 << 16


# -- real WebRTC --------------------------------------------------------------------------------------------

class _Link:
    """A lossy, jittery link in user space on the receiving side of a loopback connection: each datagram that
    reaches the receiver's ICE sockets is dropped with ``loss``, else handed on after ``delay`` ± ``spread`` s
    (so packets reorder); a seeded generator keeps the impairment repeatable. Below everything that is measured
    (it is what the kernel would have delivered), and without netem, which this kernel lacks."""

    def __init__(self, pc: RTCPeerConnection, loss: float, delay: float, spread: float, seed: int = 7) -> None:
        connection = pc.getTransceivers()[0].receiver.transport.transport._connection
        self._protocols = list(connection._protocols)
        self._rng = random.Random(seed)
        self.loss, self.delay, self.spread = loss, delay, spread
        for protocol in self._protocols:
            protocol.datagram_received = self._impaired(protocol.datagram_received)

    def _impaired(self, deliver: Any) -> Any:
        loop = asyncio.get_running_loop()

        def received(data: bytes, addr: Any) -> None:
            if self._rng.random() < self.loss:
                return
            loop.call_later(max(0.0, self.delay + self._rng.uniform(-self.spread, self.spread)), deliver, data, addr)

        return received

    def remove(self) -> None:
        for protocol in self._protocols:
            protocol.__dict__.pop("datagram_received", None)


async def _call(on_track: Any) -> tuple[RTCPeerConnection, RTCPeerConnection, SharedVideoEncoder, VideoSource]:
    source = VideoSource(1, width=320, height=180, fps=30)
    encoder = SharedVideoEncoder(source, bitrate_bps=300_000)
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    sender.addTransceiver(encoder.track(), direction="sendonly")
    receiver.on("track", lambda track: on_track(receiver, track))
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(RTCSessionDescription(sdp=sender.localDescription.sdp, type="offer"))
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(RTCSessionDescription(sdp=receiver.localDescription.sdp, type="answer"))
    deadline = time.monotonic() + 20
    while sender.connectionState != "connected" or receiver.connectionState != "connected":
        assert time.monotonic() < deadline, "the call did not connect within 20 s"
        await asyncio.sleep(0.05)
    return sender, receiver, encoder, source


def _bends() -> None:
    pin_host_addresses(["127.0.0.1"])
    netio.install()
    jitter.install()
    ntpclock.install()
    remb.install()


async def _agreement(seconds: float) -> dict[str, Any]:
    _bends()
    counted = {"aiortc": 0, "lean": 0}
    leans: list[lean_receiver.LeanReceiver] = []
    receivers: list[Any] = []

    def on_track(pc: RTCPeerConnection, track: Any) -> None:
        receiver = receiver_of(pc, track)
        assert receiver is not None
        receivers.append(receiver)
        count_received(receiver)
        tap(receiver, lambda codec, frame: counted.__setitem__("aiortc", counted["aiortc"] + 1))
        leans.append(lean_receiver.attach(receiver, lambda: counted.__setitem__("lean", counted["lean"] + 1),
                                          tee=True))

    sender, receiver, encoder, source = await _call(on_track)
    link = _Link(receiver, loss=0.05, delay=0.03, spread=0.02)
    await asyncio.sleep(seconds)
    await encoder.stop()
    await asyncio.sleep(1.0)  # what is on the link arrives; every frame is complete or dropped
    link.remove()
    (aiortc,) = inbound_counts(receivers[0])
    lean = leans[0].stats[aiortc.ssrc]
    out = {"aiortc": aiortc, "lean": (lean.packets_received, lean.packets_lost, lean.jitter),
           "frames": dict(counted), "unrepaired": leans[0].unrepaired()[aiortc.ssrc],
           "bytes": (count_received(receivers[0]).by_ssrc[aiortc.ssrc], leans[0].bytes[aiortc.ssrc])}
    await sender.close()
    await receiver.close()
    await source.stop()
    return out


@pytest.mark.timeout(90)
def test_lean_and_aiortc_agree_on_the_same_packets_behind_a_lossy_jittery_link() -> None:
    out = asyncio.run(_agreement(12.0))
    aiortc, (packets, lost, jitter_rtp) = out["aiortc"], out["lean"]
    assert aiortc.packets_received > 300 and aiortc.packets_lost > 10, out  # the link did lose packets
    assert abs(packets - aiortc.packets_received) <= 0.01 * aiortc.packets_received, out
    assert abs(lost - aiortc.packets_lost) <= max(0.01 * aiortc.packets_lost, 1), out
    assert aiortc.jitter > 90 and abs(jitter_rtp - aiortc.jitter) <= 0.01 * aiortc.jitter, out  # > 1 ms
    assert out["frames"]["lean"] == out["frames"]["aiortc"] > 200, out
    aiortc_bytes, lean_bytes = out["bytes"]
    assert abs(lean_bytes - aiortc_bytes) <= 0.01 * aiortc_bytes, out  # the received bitrate


async def _lean_alone(seconds: float) -> dict[str, Any]:
    _bends()
    frames = [0]
    leans: list[lean_receiver.LeanReceiver] = []

    def on_track(pc: RTCPeerConnection, track: Any) -> None:
        receiver = receiver_of(pc, track)
        assert receiver is not None
        leans.append(lean_receiver.attach(receiver, lambda: frames.__setitem__(0, frames[0] + 1)))

    sender, receiver, encoder, source = await _call(on_track)
    link = _Link(receiver, loss=0.05, delay=0.02, spread=0.005)
    await asyncio.sleep(seconds)
    (counts,) = inbound_counts(leans[0].receiver)
    report = await sender.getTransceivers()[0].sender.getStats()
    remote = [s for s in report.values() if isinstance(s, RTCRemoteInboundRtpStreamStats)]
    out = {"counts": counts, "frames": frames[0], "unrepaired": leans[0].unrepaired()[counts.ssrc],
           "remote": remote, "received_bytes": leans[0].bytes.get(counts.ssrc, 0)}
    link.remove()
    await encoder.stop()
    await sender.close()
    await receiver.close()
    await source.stop()
    return out


@pytest.mark.timeout(90)
def test_lean_alone_answers_as_a_receiver_repairs_loss_and_reports() -> None:
    seconds = 10.0
    out = asyncio.run(_lean_alone(seconds))
    counts = out["counts"]
    assert counts.packets_lost > 10, out  # loss before retransmission: what the link dropped
    assert out["unrepaired"] < counts.packets_lost / 4, out  # its NACKs were answered
    assert out["frames"] > 0.9 * 30 * seconds - 30, out  # its PLIs and NACKs kept the stream decodable
    assert out["remote"] and out["remote"][0].packetsLost > 0, out  # its receiver reports reached the sender
    assert out["received_bytes"] > 0.5 * 300_000 / 8 * seconds, out


def test_statistics_also_count_a_packet_that_aiortc_queued_before_the_lean_path_took_over() -> None:
    from aiortc.rtp import RtpPacket

    stats = LeanStatistics(90000)
    stats.add(RtpPacket(sequence_number=5, timestamp=900))
    stats.add(7, 1800, time.time())
    assert stats.packets_received == 2 and stats.packets_lost == 1


def test_a_stall_asks_for_a_key_frame_while_packets_come_and_not_after_they_stop() -> None:
    clock = _Clock()
    frames = LeanFrames(keyed=True, clock=clock)
    frames.add(1, 1000, _flags(VP8_DELTA, True))  # no key frame yet: nothing completes
    frames.want_pli = False
    clock.now += 2.0
    frames.stalled(clock.now)
    assert frames.want_pli  # packets came, no frame for longer than STALL_S
    frames.want_pli = False
    clock.now += 2.0
    frames.stalled(clock.now)
    assert not frames.want_pli  # nothing arrived since: a sender that stopped is not asked again


async def _clean(seconds: float) -> dict[str, Any]:
    _bends()
    frames = [0]
    leans: list[lean_receiver.LeanReceiver] = []

    def on_track(pc: RTCPeerConnection, track: Any) -> None:
        receiver = receiver_of(pc, track)
        assert receiver is not None
        leans.append(lean_receiver.attach(receiver, lambda: frames.__setitem__(0, frames[0] + 1)))

    sender, receiver, encoder, source = await _call(on_track)
    await asyncio.sleep(seconds)
    hook = leans[0].receiver.transport._confbench_lean_hook
    loop = asyncio.get_running_loop()
    readers = [loop._selector.get_key(p.transport._sock_fd).data[0]._callback  # type: ignore[attr-defined]
               for p in hook._connection._protocols]
    (counts,) = inbound_counts(leans[0].receiver)
    report = await leans[0].receiver.getStats()
    stamped = [getattr(p.transport, "_confbench_stamped", False) for p in hook._connection._protocols]
    out = {"readers": readers, "hook_read": hook._read, "counts": counts, "frames": frames[0], "stamped": stamped,
           "sender_reports": [s for s in report.values() if type(s).__name__ == "RTCRemoteOutboundRtpStreamStats"],
           "received_bytes": leans[0].bytes.get(counts.ssrc, 0)}
    await encoder.stop()
    await sender.close()
    await receiver.close()
    await source.stop()
    return out


@pytest.mark.timeout(90)
@pytest.mark.parametrize("stamped", [False, True], ids=["recvfrom", "recvmsg-with-arrival-time"])
def test_lean_path_reads_its_socket_itself_and_hands_the_rest_to_aiortc(stamped: bool,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Stamped: sockets made as a media host makes them (rtcparrival's kernel arrival time on every datagram),
    # without the process-wide part of rtcparrival.install (its readers of the times are not under test here).
    monkeypatch.setattr(rtcparrival, "_installed", stamped)
    seconds = 6.0
    out = asyncio.run(_clean(seconds))
    assert out["readers"] and all(r == out["hook_read"] for r in out["readers"]), out  # no bytes per packet
    assert all(s == stamped for s in out["stamped"]), out
    counts = out["counts"]
    assert counts.packets_received > 20 * seconds and counts.packets_lost == 0, out
    assert out["frames"] > 0.9 * 30 * seconds - 30, out  # every frame assembled from the shared buffer
    assert out["received_bytes"] > 0.5 * 300_000 / 8 * seconds, out
    assert out["sender_reports"], out  # SRTCP (not lean) still reached aiortc through the same reads
