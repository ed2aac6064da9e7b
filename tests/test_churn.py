"""Long runs under churn: the leak check (``harness.analysis.growth``) and the CI form of ``benchmarks/churn.py``.

The CI form runs the churn scenario (participants leaving after 15 s and replaced at once) on the reference
SFU for 3 measured minutes, about 3.7 minutes in all, and requires that nothing the load generator or the SFU
holds grew from minute 1 to minute 3 by more than the benchmark's bounds (``BOUND``).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

import harness.reference.sfu as sfu_module
from harness.analysis.growth import MIN_MINUTES_FOR_SLOPE, judge, slope
from harness.media.encoder import SharedVideoEncoder
from harness.media.video import VideoSource
from harness.reference.sfu import Sfu
from harness.rtc.ice import pin_host_addresses
from harness.scenario.scenario import load_scenario

ROOT = Path(__file__).resolve().parent.parent


def test_slope_is_the_least_squares_slope_per_minute() -> None:
    assert slope([1, 3, 5, 7]) == pytest.approx(2.0)
    assert slope([4, 4, 4]) == 0.0
    assert slope([9]) == 0.0


def test_a_series_that_warms_up_then_stays_level_levelled_off() -> None:
    warm = [100, 140, 160, 165, 166, 165, 167, 166, 166, 167, 166, 166]
    growth = judge(warm, tolerance_per_min=0.5, bound=10)
    assert growth.levelled and growth.early_slope > 10 and abs(growth.late_slope) < 0.5


def test_a_series_that_keeps_growing_did_not_level_off() -> None:
    leak = [100 + 3 * i for i in range(12)]  # 3 a minute for ever: a leak
    growth = judge(leak, tolerance_per_min=0.5, bound=10)
    assert not growth.levelled and growth.late_slope == pytest.approx(3.0)


def test_a_short_series_is_judged_by_its_growth_against_the_bound() -> None:
    assert len([1, 2, 3]) < MIN_MINUTES_FOR_SLOPE
    assert judge([50, 58, 55], tolerance_per_min=0.5, bound=8).levelled
    assert not judge([50, 58, 61], tolerance_per_min=0.5, bound=8).levelled
    with pytest.raises(ValueError):
        judge([], tolerance_per_min=0.5, bound=8)


def test_the_churn_scenario_replaces_leavers() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "churn.toml")
    churners = [g for g in scenario.groups if g.rejoin]
    assert churners and all(g.stay_s for g in churners) and scenario.systems == ("reference",)


async def _publisher() -> tuple[RTCPeerConnection, VideoSource, SharedVideoEncoder]:
    source = VideoSource(1, width=160, height=90, fps=10)
    encoder = SharedVideoEncoder(source, bitrate_bps=100_000)
    pc = RTCPeerConnection()
    pc.addTransceiver(encoder.track(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, source, encoder


@pytest.mark.integration
def test_the_sfu_drops_a_session_that_never_connects_and_keeps_one_that_did(monkeypatch: pytest.MonkeyPatch) -> None:
    # A client that left while its offer was in flight never learns the resource URL, so it cannot DELETE it;
    # before CONNECT_TIMEOUT_S such sessions stayed on the SFU for ever (found by benchmarks/churn.py).
    monkeypatch.setattr(sfu_module, "CONNECT_TIMEOUT_S", 1.5)

    async def run() -> None:
        pin_host_addresses(["127.0.0.1"])
        sfu = Sfu()
        gone, gone_source, gone_encoder = await _publisher()
        stays, source, encoder = await _publisher()
        try:
            await sfu.publish("r", "gone", gone.localDescription.sdp)
            await gone.close()  # never connects: the answer is never applied
            _, answer = await sfu.publish("r", "stays", stays.localDescription.sdp)
            await stays.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            for _ in range(100):
                if stays.connectionState == "connected":
                    break
                await asyncio.sleep(0.05)
            assert stays.connectionState == "connected"
            await asyncio.sleep(2.5)
            assert sfu.publishers("r") == ["stays"]
            assert [r.participant for r in sfu.resources.values()] == ["stays"]
        finally:
            await sfu.close()
            await stays.close()
            for part in (gone_encoder, encoder, gone_source, source):
                await part.stop()
            pin_host_addresses(None)

    asyncio.run(run())


@pytest.mark.integration
@pytest.mark.timeout(290)
def test_three_minutes_of_churn_leave_nothing_growing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "churn.py"), "--minutes", "3", "--results", str(tmp_path)],
        capture_output=True, text=True, timeout=280, cwd=ROOT)
    out = proc.stdout
    rows = [line for line in out.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"])]
    assert len(rows) == 3, out + proc.stderr
    assert "churn: run completed" in out or "churn: run invalid" in out, out
    # More than the 6 participants of the scenario joined: leavers were replaced.
    joins = re.findall(r"participants +(\d+)/\d+ joined", (tmp_path / "churn-run.log").read_text())
    assert joins and int(joins[-1]) > 12, joins[-1:]
    assert proc.returncode == 0, out
    assert "every figure levelled off" in out
