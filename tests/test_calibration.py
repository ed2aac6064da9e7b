"""Calibration and the floor every run records: real media hosts, real WebRTC, the real wire (root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.orchestrate import calibration
from harness.scenario.scenario import VideoSettings

ROOT = Path(__file__).resolve().parent.parent
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the emulated network needs root (namespaces, TUN)")


@pytest.mark.integration
@needs_root
def test_quick_calibration_measures_floor_delay_and_loss(tmp_path: Path) -> None:
    env = dict(os.environ, CONFBENCH_CALIBRATION=str(tmp_path / "cal.json"))
    done = subprocess.run([sys.executable, "-m", "harness.cli", "calibrate", "--quick", "--json"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode in (0, 1), done.stderr  # 1: a cell outside its limit (a loaded machine)
    result = json.loads(done.stdout)
    assert result["backend"] == "wire"
    floor = result["floor"]["video_p50_ms"]
    assert floor is not None and floor > 0 and result["floor"]["frames"] > 30
    cells = {(c["kind"], c["injected"]): c for c in result["cells"]}
    assert set(cells) == {("delay", 0), ("delay", 50), ("loss", 10)}
    delayed = cells[("delay", 50)]
    # The latency behind a 50 ms link cannot be below 50 ms, whatever the load.
    assert delayed["measured"] + floor >= 50 and delayed["limit"] == pytest.approx(3.0)
    assert isinstance(delayed["ok"], bool)
    lossy = cells[("loss", 10)]
    assert 3 < lossy["measured"] < 25 and "the wire dropped" in lossy["note"]
    # The calibration is kept for the runs that follow.
    kept = json.loads((tmp_path / "cal.json").read_text())
    assert kept["last_calibration"]["floor"] == result["floor"]


def test_the_table_states_injected_measured_error_and_limit() -> None:
    floor = calibration.Floor("640x360@30 VP8 500 kbit/s", 7.5, 12.0, 90.0, 300, "2026-11-29T00:00:00+00:00",
                              "calibration")
    cal = calibration.Calibration("640x360@30 VP8 500 kbit/s", "wire", floor, cells=(
        calibration.Cell("delay", 20, "ms", 20.9, 0.9, 2.4, True, "video latency p50 − floor p50", 180),
        calibration.Cell("loss", 5, "%", 6.0, 0.2, 0.15, False, "RTP loss", 3000),
    ))
    text = calibration.format_calibration(cal)
    assert "floor (loopback, no network, no server): video p50 7.5 ms" in text
    assert "+0.90 ms" in text and "±2.4 ms" in text and "yes" in text
    assert "+20.0 %" in text and "±15 %" in text and "NO" in text
    assert not cal.ok and text.endswith("SOME CELLS ARE OUTSIDE THEIR LIMITS")
    assert calibration.delay_limit(200) == pytest.approx(6.0)


def test_calibration_without_root_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["calibrate"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("confbench: calibration through an emulated network needs root") and "\n" not in err
    assert "--floor-only" in err


@pytest.mark.integration
def test_a_run_records_a_floor_measured_once_and_then_remembered(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    monkeypatch.setenv(calibration.FLOOR_CHECK_ENV, "1")
    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path / "cal.json"))
    video = VideoSettings(width=320, height=180, fps=15, bitrate_kbps=300)
    floor = calibration.instrument_floor(video)
    assert floor is not None and floor["source"] == "quick check", floor
    assert floor["video"] == "320x180@15 VP8 300 kbit/s" and floor["frames"] > 10
    assert 0 < floor["video_p50_ms"] <= floor["video_p95_ms"]
    def no_second_check(*args: object, **kwargs: object) -> None:
        raise AssertionError("the floor was measured again")

    monkeypatch.setattr(calibration.subprocess, "run", no_second_check)
    assert calibration.instrument_floor(video) == floor  # remembered
    monkeypatch.setenv(calibration.FLOOR_CHECK_ENV, "0")
    assert calibration.instrument_floor(VideoSettings(width=640, height=360)) is None
