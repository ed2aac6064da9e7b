"""A browser on Janus's VideoRoom demo page and native participants in the same room, against a real Janus.

A whole ``confbench run --system janus``: Janus starts in a namespace of its own, the browser group in
another (``harness.browser.confinement``), both joined by the run's network. The browser comes first (the
natives wait 6 s), so the demo's room must be created by the platform's prepare hook; the natives join the
same numeric room through the janus adapter. Each reads the others' stamps.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import janus_skip_reason

from harness.analysis.summary import stream_owners
from harness.browser import chromium
from harness.store.reader import RunReader

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which(chromium.DEFAULT_CHROMIUM) is None, reason="Chromium not installed"),
    pytest.mark.skipif(not Path("/usr/share/janus/demos/videoroomtest.html").exists(),
                       reason="Janus's demo pages not installed (apt-get install janus-demos libjs-janus-gateway)"),
    pytest.mark.skipif(janus_skip_reason() is not None, reason=str(janus_skip_reason())),
]

SCENARIO = """
name = "browser-janus"
duration_s = 10
spawn_rate = 4
join_timeout_s = 30
room = "browser-janus"
[media.video]
width = 320
height = 180
fps = 15
bitrate_kbps = 300
[[groups]]
name = "b"
count = 1
engine = "browser"
[[groups]]
name = "n"
count = 2
join_delay_s = 6
"""


def test_browser_on_the_demo_page_and_native_participants_meet(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(SCENARIO)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(tmp_path / "s.toml"), "--system", "janus",
                           "--processes", "1", "--results", str(tmp_path / "r"), "--no-report"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    reader = RunReader(next(p for p in (tmp_path / "r").iterdir() if p.is_dir()))
    joins = reader.table("joins")
    assert joins["ok"].all() and len(joins) == 3, joins[["participant", "ok", "error"]]
    browser = next(p for p, e in zip(joins["participant"], joins["engine"], strict=True) if e == "browser")
    natives = sorted(p for p in joins["participant"] if p != browser)
    frames = reader.table("frames")
    # Raw rows name a sender as its receiver knew it: the natives know the browser by its demo display name
    # (letters and digits only), the browser knows participants of other media hosts as stream-<id>. The
    # stamped stream id says who it was (what the summary and the report use).
    owners = stream_owners(joins)
    senders = [owners.get(int(sid), name) for sid, name in zip(frames["stream_id"], frames["sender"], strict=True)]
    pairs = frames.assign(sender=senders).groupby(["sender", "receiver"]).size().to_dict()
    for native in natives:
        assert pairs.get((browser, native), 0) > 30, pairs
        # The demo gives each feed a connection of its own, all with the same track ids: every feed counts.
        assert pairs.get((native, browser), 0) > 30, pairs
    inbound = reader.table("streams")
    inbound = inbound[(inbound["participant"] == browser) & (inbound["direction"] == "in")]
    by_stream = {f"stream-{sid}": name for sid, name in owners.items()}
    # (A connection's first second may be filed under the connection before its first stamp names the sender.)
    assert set(natives) <= {by_stream.get(p, p) for p in inbound["peer"]}, set(inbound["peer"])
    audio = reader.table("audio")
    heard = {by_stream.get(name, name) for name in audio[audio["receiver"] == browser]["sender"]}
    assert heard == set(natives), heard
    events = reader.table("events")
    routes = events[(events["kind"] == "ice_route") & (events["participant"] == browser)]["detail"]
    assert len(routes) > 0
    for detail in routes:  # the browser's media used the run's own network, never the machine's address
        assert ipaddress.ip_address(detail.split(" -> ")[0]) in ipaddress.ip_network("198.18.0.0/15"), detail
