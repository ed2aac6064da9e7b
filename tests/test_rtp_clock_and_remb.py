"""aiortc's per-packet clock from time.time(), and no REMB estimator at the generator's receivers."""

from __future__ import annotations

from aiortc import RTCPeerConnection, clock
from aiortc.codecs import CODECS

from harness.rtc import ntpclock, remb


def test_ntp_time_equals_aiortcs_own() -> None:
    before = clock.datetime_to_ntp(clock.current_datetime())
    ours = ntpclock.current_ntp_time()
    after = clock.datetime_to_ntp(clock.current_datetime())
    assert before <= ours <= after + (1 << 22)  # within a millisecond of aiortc's own computation
    ms = ntpclock.current_ms()
    assert abs(ms - int((clock.current_datetime() - clock.NTP_EPOCH).total_seconds() * 1000)) <= 5
    ntpclock.install()
    assert clock.current_ntp_time is ntpclock.current_ntp_time and clock.current_ms is ntpclock.current_ms


async def _offer() -> tuple[str, object]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    receiver = pc.getTransceivers()[0].receiver
    await pc.close()
    return pc.localDescription.sdp, receiver


def test_no_remb_offered_nor_estimated() -> None:
    import asyncio

    remb.install()
    remb.install()  # idempotent
    assert all(fb.type != "goog-remb" for codec in CODECS["video"] for fb in codec.rtcpFeedback)
    sdp, receiver = asyncio.run(_offer())
    assert "goog-remb" not in sdp and "nack pli" in sdp  # the rest of the feedback stays
    assert receiver._RTCRtpReceiver__remote_bitrate_estimator is None  # type: ignore[attr-defined]
    # One receiver may have its estimator back (LiveKit chooses an "auto" subscriber's layer from its REMB).
    remb.estimate(receiver)
    assert receiver._RTCRtpReceiver__remote_bitrate_estimator is not None  # type: ignore[attr-defined]
