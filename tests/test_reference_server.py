"""The reference SFU's WHIP/WHEP endpoints: status codes, headers, and media through them (real server process)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCPeerConnection

from harness.media.encoder import SharedVideoEncoder
from harness.media.video import VideoSource
from harness.reference.server import READY_PREFIX
from harness.rtc.ice import pin_host_addresses

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"


def start_server(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "harness.reference.server", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, **(env or {})))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(READY_PREFIX), line + (proc.stderr.read() if proc.stderr else "")
    return proc, line[len(READY_PREFIX):].strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    token_file = tmp_path_factory.mktemp("tok") / "token"
    token_file.write_text(TOKEN + "\n")
    proc, url = start_server("--token-file", str(token_file), "--ice-server", "stun:127.0.0.1:3478")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def call(method: str, url: str, body: bytes | None = None, content_type: str | None = None,
         token: str | None = TOKEN) -> tuple[int, dict[str, str], str]:
    headers = {}
    if content_type:
        headers["Content-Type"] = content_type
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


async def offer(kind: str = "publish") -> tuple[RTCPeerConnection, str, Any]:
    pc = RTCPeerConnection()
    extra: Any = None
    if kind == "publish":
        source = VideoSource(3, width=320, height=180, fps=15)
        extra = (source, SharedVideoEncoder(source))
        pc.addTransceiver(extra[1].track(), direction="sendonly")
    else:
        pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp, extra


def test_refusals_have_status_and_reason(server: str) -> None:
    assert call("GET", f"{server}/health", token=None)[0] == 401
    status, headers, _ = call("POST", f"{server}/whip/r/a", b"v=0", "application/sdp", token="wrong")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
    status, _, reason = call("POST", f"{server}/whip/r/a", b"hello", "text/plain")
    assert status == 415 and "application/sdp" in reason
    assert call("POST", f"{server}/whip/r/a", b"", "application/sdp")[0] == 400
    status, _, reason = call("POST", f"{server}/whip/r/a", b"v=0\r\nm=garbage\r\n", "application/sdp")
    assert status == 400 and reason.strip()
    assert call("POST", f"{server}/whep/r/nobody", b"v=0\r\nm=video\r\n", "application/sdp")[0] == 404
    assert call("GET", f"{server}/rooms/empty")[0] == 404
    assert call("DELETE", f"{server}/resource/nope")[0] == 404
    assert call("PATCH", f"{server}/resource/nope", b"a=x", "application/trickle-ice-sdpfrag")[0] == 404
    status, headers, _ = call("OPTIONS", f"{server}/whip/r/a", token=None)
    assert status == 204 and headers["Accept-Post"] == "application/sdp"
    assert 'rel="ice-server"' in headers["Link"] and "stun:127.0.0.1:3478" in headers["Link"]
    assert call("GET", f"{server}/health")[0] == 200  # still alive after all that


def test_publish_subscribe_patch_delete(server: str) -> None:
    async def run() -> None:
        pin_host_addresses(["127.0.0.1"])
        pub, sdp, (source, encoder) = await offer("publish")
        status, headers, answer = await asyncio.to_thread(call, "POST", f"{server}/whip/room1/alice",
                                                           sdp.encode(), "application/sdp")
        assert status == 201, answer
        assert headers["Content-Type"].startswith("application/sdp")
        assert headers["Location"].startswith("/resource/") and headers["ETag"].startswith('"')
        assert 'rel="ice-server"' in headers["Link"]
        resource = server + headers["Location"]
        assert "a=recvonly" in answer
        status, _, again = await asyncio.to_thread(call, "POST", f"{server}/whip/room1/alice", sdp.encode(),
                                                   "application/sdp")
        assert status == 409, again
        status, _, listing = await asyncio.to_thread(call, "GET", f"{server}/rooms/room1")
        assert status == 200 and '"alice"' in listing

        sub, sub_sdp, _ = await offer("subscribe")
        status, sub_headers, sub_answer = await asyncio.to_thread(call, "POST", f"{server}/whep/room1/alice",
                                                                  sub_sdp.encode(), "application/sdp")
        assert status == 201 and "a=sendonly" in sub_answer
        assert sub_headers["Location"] != headers["Location"]
        status, patch_headers, _ = await asyncio.to_thread(call, "PATCH", resource, b"a=ice-ufrag:x",
                                                           "application/trickle-ice-sdpfrag")
        assert status == 405 and "DELETE" in patch_headers["Allow"]
        assert (await asyncio.to_thread(call, "DELETE", resource))[0] == 200
        assert (await asyncio.to_thread(call, "DELETE", resource))[0] == 404
        status, _, _ = await asyncio.to_thread(call, "GET", f"{server}/rooms/room1")
        assert status == 404  # the room went with its last publisher
        await asyncio.to_thread(call, "DELETE", server + sub_headers["Location"])
        for pc in (pub, sub):
            await pc.close()
        await encoder.stop()
        await source.stop()
        pin_host_addresses(None)

    asyncio.run(run())


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, **(env or {})), cwd=cwd)


SMALL = """
name = "whip-small"
duration_s = 6
spawn_rate = 5
[media.video]
width = 320
height = 180
fps = 15
bitrate_kbps = 300
[[groups]]
name = "g"
count = 3
"""


def test_whip_system_against_a_separate_server(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    proc, url = start_server("--token-file", str(token_file))
    scenario = tmp_path / "s.toml"
    scenario.write_text(SMALL)
    try:
        ok = run_cli("run", str(scenario), "--system", f"whip={url}/", "--results", str(tmp_path / "r"),
                     "--no-report", env={"CONFBENCH_WHIP_TOKEN": TOKEN})
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "joined" in ok.stdout and "== whip" in ok.stdout
        assert TOKEN not in "".join(p.read_text(errors="replace") for p in (tmp_path / "r").rglob("*.json"))
        wrong = run_cli("run", str(scenario), "--system", f"whip={url}/", "--results", str(tmp_path / "r2"),
                        env={"CONFBENCH_WHIP_TOKEN": "wrong"})
        assert wrong.returncode == 1
        assert wrong.stderr.strip().count("\n") == 0 and "token" in wrong.stderr, wrong.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    time.sleep(0.2)
    down = run_cli("run", str(scenario), "--system", f"whip={url}/", "--results", str(tmp_path / "r3"))
    assert down.returncode == 1
    assert down.stderr.strip().count("\n") == 0 and "cannot reach" in down.stderr, down.stderr
