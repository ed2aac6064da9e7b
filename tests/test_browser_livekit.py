"""A browser on confbench's LiveKit join page (livekit-client, bundled locally) and native participants in one
room, against a real LiveKit: a whole ``confbench run --system livekit``.

LiveKit starts in a namespace of its own, the browser group in another (``harness.browser.confinement``), both
joined by the run's network. The browser's access token is signed by the page's prepare hook; it is typed into
the page, never put in a URL. Each participant reads the others' stamps.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import livekit_skip_reason

from harness.analysis.summary import stream_owners
from harness.browser import chromium
from harness.store.reader import RunReader

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which(chromium.DEFAULT_CHROMIUM) is None, reason="Chromium not installed"),
]

SCENARIO = """
name = "browser-livekit"
duration_s = 10
spawn_rate = 4
join_timeout_s = 30
room = "browser-livekit"
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
join_delay_s = 4
"""


def test_browser_on_the_livekit_page_and_native_participants_meet(tmp_path: Path) -> None:
    reason = livekit_skip_reason()
    if reason:
        pytest.skip(reason)
    from harness.errors import BrowserError
    from harness.testbed.livekit_page import ensure_page

    try:
        ensure_page()
    except BrowserError as exc:
        pytest.skip(str(exc))
    (tmp_path / "s.toml").write_text(SCENARIO)
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(tmp_path / "s.toml"), "--system",
                           "livekit", "--processes", "1", "--results", str(tmp_path / "r"), "--no-report"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    reader = RunReader(next(p for p in (tmp_path / "r").iterdir() if p.is_dir()))
    joins = reader.table("joins")
    assert joins["ok"].all() and len(joins) == 3, joins[["participant", "ok", "error"]]
    browser = next(p for p, e in zip(joins["participant"], joins["engine"], strict=True) if e == "browser")
    natives = sorted(p for p in joins["participant"] if p != browser)
    frames = reader.table("frames")
    owners = stream_owners(joins)
    senders = [owners.get(int(sid), name) for sid, name in zip(frames["stream_id"], frames["sender"], strict=True)]
    pairs = frames.assign(sender=senders).groupby(["sender", "receiver"]).size().to_dict()
    for native in natives:
        assert pairs.get((browser, native), 0) > 30, pairs
        assert pairs.get((native, browser), 0) > 30, pairs
    audio = reader.table("audio")
    by_stream = {f"stream-{sid}": name for sid, name in owners.items()}
    heard = {by_stream.get(name, name) for name in audio[audio["receiver"] == browser]["sender"]}
    assert heard == set(natives), heard
    events = reader.table("events")
    routes = events[(events["kind"] == "ice_route") & (events["participant"] == browser)]["detail"]
    assert len(routes) > 0
    for detail in routes:  # the browser's media used the run's own network, never the machine's address
        assert ipaddress.ip_address(detail.split(" -> ")[0]) in ipaddress.ip_network("198.18.0.0/15"), detail
    # The token the page was given is nowhere in the results (nor the secret that signed it).
    leaks = subprocess.run(["grep", "-rl", "eyJ", str(reader.run_dir)], capture_output=True, text=True)
    assert not leaks.stdout, leaks.stdout
