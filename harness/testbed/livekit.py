"""A local LiveKit server for one run or one test, built from its Go module, in a network namespace of its own.

The server is built once by :mod:`harness.testbed.gobuild` (version pinned here, :data:`LIVEKIT_SERVER`) and
started inside a namespace (:mod:`harness.testbed.netns`) whose veth end is the only interface it may gather
ICE candidates on, as the Janus testbed does; participants pin their candidates to the other end. The
configuration is generated for the run: one node without Redis, signalling on the namespace's address, RTC on
a bounded UDP port range (plus its TCP fallback port), no STUN servers, no external-IP discovery, no TURN, no
webhooks, no Prometheus port: nothing it does leaves the machine. Rooms sync streams (LiveKit's
``sync_streams``: a participant's camera and microphone reach subscribers as one MediaStream, for lip sync),
which is also how a browser receiver pairs an audio track with the video whose stamps name its sender.

Its API key and secret are generated per start (:func:`generate_keys`) and handed to the server through its
environment (``LIVEKIT_KEYS``), never through a file, so they never reach the run's results.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import TestbedError
from harness.testbed.gobuild import GoBuildError, GoTool, build_all, ensure_built, installed
from harness.testbed.netns import Namespace, require_root
from harness.testbed.served import NamespacedServer, discard

#: The LiveKit server under test: the one place its version is pinned. (v1.13.6 and later replace pion's
#: webrtc, ice and dtls by LiveKit forks that the module proxy here does not serve; v1.13.5 uses pion's own.)
LIVEKIT_SERVER = GoTool(name="livekit-server", module="github.com/livekit/livekit-server",
                        package="github.com/livekit/livekit-server/cmd/server", version="v1.13.5")
#: LiveKit's CLI (``lk``, whose ``load-test`` benchmarks/vs_lk.py runs side by side with confbench).
LIVEKIT_CLI = GoTool(name="lk", module="github.com/livekit/livekit-cli/v2",
                     package="github.com/livekit/livekit-cli/v2/cmd/lk", version="v2.5.4")
#: Every Go-built tool of the testbeds (``python -m harness.testbed.livekit`` builds them all).
GO_TOOLS = (LIVEKIT_SERVER, LIVEKIT_CLI)

SIGNAL_PORT = 7880
RTC_TCP_PORT = 7881
RTC_UDP_PORTS = (50000, 50999)
START_TIMEOUT_S = 30.0
NO_ROOT_HINT = ("point the harness at a running LiveKit instead: --system livekit=ws://HOST:7880 "
                "(with CONFBENCH_LIVEKIT_API_KEY and CONFBENCH_LIVEKIT_API_SECRET)")


def generate_keys() -> tuple[str, str]:
    """A fresh API key and secret (LiveKit wants secrets of at least 32 characters)."""
    return f"cb{secrets.token_hex(6)}", secrets.token_urlsafe(32)


def server_binary() -> Path:
    """The built server (building it once if needed); :class:`~harness.testbed.gobuild.GoBuildError` if it cannot."""
    try:
        return ensure_built(LIVEKIT_SERVER)
    except GoBuildError as exc:
        raise GoBuildError(f"LiveKit is unavailable: {exc}; {NO_ROOT_HINT}") from None


def unavailable_reason() -> str | None:
    """Why the local LiveKit testbed cannot run here (None when it can); builds the server if it must."""
    if os.geteuid() != 0:
        return "the local LiveKit testbed needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "the local LiveKit testbed needs the 'ip' command (Debian's iproute2)"
    try:
        server_binary()
    except TestbedError as exc:
        return str(exc)
    return None


def _config(address: str, interfaces: list[str]) -> str:
    """LiveKit's YAML configuration for one local node (keys excluded: they come from the environment)."""
    include = "".join(f"\n      - {name}" for name in interfaces)
    return f"""port: {SIGNAL_PORT}
bind_addresses:
  - {address}
rtc:
  port_range_start: {RTC_UDP_PORTS[0]}
  port_range_end: {RTC_UDP_PORTS[1]}
  tcp_port: {RTC_TCP_PORT}
  use_external_ip: false
  enable_loopback_candidate: false
  node_ip: {address}
  stun_servers: []
  interfaces:
    includes:{include}
turn:
  enabled: false
room:
  auto_create: true
  empty_timeout: 60
  sync_streams: true
logging:
  level: warn
  pion_level: error
"""


class LocalLiveKit(NamespacedServer):
    """LiveKit running in its own namespace; :meth:`stop` ends it and removes the namespace and config."""

    NAME = "LiveKit"
    LOG = "livekit.log"
    READY_PORT = SIGNAL_PORT
    READY_WHAT = "its signalling port"

    def __init__(self, namespace: Namespace, proc: subprocess.Popen[bytes], folder: Path, api_key: str,
                 api_secret: str, version: str) -> None:
        super().__init__(namespace, proc, folder)
        self.api_key = api_key
        self.api_secret = api_secret
        self.version = version

    @property
    def ws_url(self) -> str:
        """The signalling WebSocket (and HTTP API) base URL."""
        return f"ws://{self.address}:{SIGNAL_PORT}"

    @classmethod
    def start(cls, timeout_s: float = START_TIMEOUT_S, network: Any = None) -> LocalLiveKit:
        """Build (once) and start LiveKit in a new namespace with fresh keys; wait until it answers.

        ``network``: the run's impaired network (``harness.testbed.impairment``), which the namespace then
        joins too, so that participants of impaired groups reach the server through their links.
        """
        require_root("the local LiveKit testbed", NO_ROOT_HINT)
        binary = server_binary()
        namespace = Namespace.create()
        folder = Path(tempfile.mkdtemp(prefix="confbench-livekit-"))
        api_key, api_secret = generate_keys()
        try:
            interfaces = [namespace.link.ns_ifname]
            if network is not None:
                network.attach(namespace, owns=[namespace.link.ns_address])
                interfaces.append(namespace.tun_links[-1].ns_ifname)
            (folder / "livekit.yaml").write_text(_config(namespace.link.ns_address, interfaces))
            env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
            env["LIVEKIT_KEYS"] = f"{api_key}: {api_secret}"
            proc = cls.launch(namespace, folder, [str(binary), "--config", str(folder / "livekit.yaml")], env)
            server = cls(namespace, proc, folder, api_key, api_secret, LIVEKIT_SERVER.version.lstrip("v"))
            server.wait_ready(timeout_s)
            return server
        except BaseException:
            discard(namespace, folder, locals().get("proc"))
            raise


def cli_binary() -> Path | None:
    """LiveKit's ``lk`` if it was built before (never builds; see :func:`harness.testbed.gobuild.ensure_built`)."""
    return installed(LIVEKIT_CLI)


def main() -> int:
    """``python -m harness.testbed.livekit``: build LiveKit's pinned Go tools once (what ``.ci/run`` calls)."""
    return build_all(GO_TOOLS)


if __name__ == "__main__":
    raise SystemExit(main())
