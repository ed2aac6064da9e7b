"""``confbench run`` with a mixed room: Locust, one media host, a native and a browser participant.

The whole path of a browser participant's rows (page → media host → Locust → Parquet) and the report's
side-by-side table, plus the one-line refusals: a browser group without Chromium, or on a system without a
web client.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.browser import chromium
from harness.store.reader import RunReader

ROOT = Path(__file__).resolve().parent.parent
MIXED = """
name = "mixed-small"
duration_s = 12
spawn_rate = 2
join_timeout_s = 30
{browser}
[media.video]
width = 320
height = 180
fps = 30
bitrate_kbps = 300
[[groups]]
name = "native"
count = 1
[[groups]]
name = "browser"
count = 1
engine = "browser"
"""


def confbench(tmp_path: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=timeout)


@pytest.mark.integration
@pytest.mark.skipif(shutil.which(chromium.DEFAULT_CHROMIUM) is None, reason="Chromium not installed")
def test_mixed_room_end_to_end(tmp_path: Path) -> None:
    scenario = tmp_path / "mixed.toml"
    scenario.write_text(MIXED.format(browser=""))
    done = confbench(tmp_path, "run", str(scenario), "--system", "reference", "--processes", "1",
                     "--results", str(tmp_path / "results"), "--reports", str(tmp_path / "reports"))
    assert "Traceback" not in done.stderr, done.stderr
    run_dir = next(p for p in (tmp_path / "results").iterdir() if p.is_dir())
    reader = RunReader(run_dir)
    joins = reader.table("joins")
    assert joins["ok"].all() and len(joins) == 2, joins
    assert set(joins["engine"].fillna("native")) == {"native", "browser"}
    engine = dict(zip(joins["participant"], joins["engine"].fillna("native"), strict=True))
    native, browser = (next(p for p, e in engine.items() if e == kind) for kind in ("native", "browser"))
    frames = reader.table("frames")
    assert {(native, browser), (browser, native)} <= set(zip(frames["sender"], frames["receiver"], strict=True))
    probes = reader.table("probes")
    assert (probes["role"] == "browser").any()
    assert probes.loc[probes["role"] == "browser", "loop_lag_ms"].notna().any()  # the pages' own lateness
    summary = reader.summary()
    assert summary is not None
    assert set(summary["engines"]) == {"native", "browser"}
    assert summary["engines"]["browser"]["cpu_pct_per_participant"] is not None
    assert "browser>native" in summary["video_latency_by_path_ms"]
    page = next((tmp_path / "reports").rglob("index.html")).read_text()
    assert "Native and browser participants" in page and "browser → native" in page
    # The browser's media flowed over the run's own namespace link, never from the machine's own address.
    events = reader.table("events")
    routes = events[events["kind"] == "ice_route"]
    assert not routes.empty, "the browser reported no selected candidate pair"
    for detail in routes["detail"]:
        local = ipaddress.ip_address(detail.split(" -> ")[0])
        assert local in ipaddress.ip_network("198.18.0.0/15") or local.is_loopback, detail
    assert reader.manifest["network"]["browsers_confined"] is True


def test_browser_group_refusals_are_one_line(tmp_path: Path) -> None:
    scenario = tmp_path / "nochrome.toml"
    scenario.write_text(MIXED.format(browser='[browser]\nchromium = "/nonexistent/chromium"'))
    done = confbench(tmp_path, "run", str(scenario), "--system", "reference", "--results", str(tmp_path / "r"))
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "apt-get install chromium" in done.stderr, done.stderr
    plain = tmp_path / "p2p.toml"
    plain.write_text(MIXED.format(browser=""))
    done = confbench(tmp_path, "run", str(plain), "--system", "p2p", "--results", str(tmp_path / "r"))
    assert done.returncode == 1
    assert "p2p system has no web client" in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
