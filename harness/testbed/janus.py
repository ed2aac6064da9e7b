"""A local Janus for one run or one test, inside a network namespace of its own.

Janus's ICE agent (libnice) gathers no candidates on the loopback device, so the testbed starts Janus inside a
namespace (:mod:`harness.testbed.netns`) whose veth end is the only interface Janus may use; participants in the
root namespace pin their ICE candidates to the other end (``Link.host_address``). The configuration is
generated for the run: the VideoRoom plugin and the WebSocket and HTTP transports only, an RTP port range, no
NAT settings, no admin API, no event handlers. It lives in a temporary folder removed with the namespace.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import TestbedError
from harness.testbed.netns import Namespace, require_root
from harness.testbed.served import NamespacedServer, discard

JANUS_BINARY = "janus"
WS_PORT = 8188
HTTP_PORT = 8088
RTP_PORTS = "20000-40000"
START_TIMEOUT_S = 30.0
LIBDIR = Path("/usr/lib/x86_64-linux-gnu/janus")
NO_ROOT_HINT = "point the harness at a running Janus instead: --system janus=ws://HOST:8188"


def _libdir() -> Path:
    """Where Debian's package put Janus's plugins (the multiarch folder differs per architecture)."""
    candidates = sorted(Path("/usr/lib").glob("*/janus/plugins")) + [LIBDIR / "plugins"]
    for plugins in candidates:
        if (plugins / "libjanus_videoroom.so").exists():
            return plugins.parent
    raise TestbedError("Janus's VideoRoom plugin is not installed: install Debian's janus package "
                       f"(apt-get install janus), or {NO_ROOT_HINT}")


def _config(folder: Path, libdir: Path, address: str, interface: str, api_secret: str | None) -> None:
    """Write a minimal configuration: only what a VideoRoom run needs."""
    keep = {"plugins": {"libjanus_videoroom.so"}, "transports": {"libjanus_websockets.so", "libjanus_http.so"}}
    disabled = {
        kind: ",".join(sorted(p.name for p in (libdir / kind).glob("*.so") if p.name not in wanted))
        for kind, wanted in keep.items()
    }
    loggers = ",".join(sorted(p.name for p in (libdir / "loggers").glob("*.so")))
    (folder / "janus.jcfg").write_text(f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{libdir / 'plugins'}"
    transports_folder = "{libdir / 'transports'}"
    events_folder = "{libdir / 'events'}"
    loggers_folder = "{libdir / 'loggers'}"
    debug_level = 3
    session_timeout = 60{f'{chr(10)}    api_secret = "{api_secret}"' if api_secret else ""}
}}
media: {{ rtp_port_range = "{RTP_PORTS}" }}
nat: {{ ice_enforce_list = "{interface}" }}
plugins: {{ disable = "{disabled['plugins']}" }}
transports: {{ disable = "{disabled['transports']}" }}
loggers: {{ disable = "{loggers}" }}
events: {{ broadcast = false }}
""")
    (folder / "janus.transport.websockets.jcfg").write_text(
        f'general: {{ json = "plain" ws = true ws_port = {WS_PORT} ws_ip = "{address}" wss = false }}\n'
        "admin: { admin_ws = false admin_wss = false }\n")
    (folder / "janus.transport.http.jcfg").write_text(
        f'general: {{ json = "plain" base_path = "/janus" http = true port = {HTTP_PORT} ip = "{address}" '
        "https = false }\nadmin: { admin_http = false admin_https = false }\n")
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: { }\n")


class LocalJanus(NamespacedServer):
    """Janus running in its own namespace; :meth:`stop` ends it and removes the namespace and config."""

    NAME = "Janus"
    LOG = "janus.log"
    READY_PORT = WS_PORT
    READY_WHAT = "its WebSocket port"

    @property
    def ws_url(self) -> str:
        """The WebSocket API."""
        return f"ws://{self.address}:{WS_PORT}"

    @property
    def http_url(self) -> str:
        """The HTTP (long-poll) API."""
        return f"http://{self.address}:{HTTP_PORT}/janus"

    @classmethod
    def start(cls, timeout_s: float = START_TIMEOUT_S, api_secret: str | None = None,
              network: Any = None) -> LocalJanus:
        """Create the namespace, write the configuration, start Janus and wait until its API answers.

        ``api_secret``: make Janus require one (tests of the adapter's authentication). ``network``: the run's
        impaired network (``harness.testbed.impairment``), which the namespace then joins too, so that
        participants of impaired groups reach Janus through their links.
        """
        require_root("the local Janus testbed", NO_ROOT_HINT)
        if shutil.which(JANUS_BINARY) is None:
            raise TestbedError(f"Janus is not installed: install Debian's janus package (apt-get install janus), "
                               f"or {NO_ROOT_HINT}")
        libdir = _libdir()
        namespace = Namespace.create()
        folder = Path(tempfile.mkdtemp(prefix="confbench-janus-"))
        try:
            interfaces = namespace.link.ns_ifname
            if network is not None:
                # Janus gathers ICE candidates on the interfaces it is told when it starts: both links.
                network.attach(namespace, owns=[namespace.link.ns_address])
                interfaces += "," + namespace.tun_links[-1].ns_ifname
            _config(folder, libdir, namespace.link.ns_address, interfaces, api_secret)
            proc = cls.launch(namespace, folder, [JANUS_BINARY, "-F", str(folder), "-C", str(folder / "janus.jcfg"),
                                                  "-i", namespace.link.ns_address, "-o"])
            janus = cls(namespace, proc, folder)
            janus.wait_ready(timeout_s)
            return janus
        except BaseException:
            discard(namespace, folder, locals().get("proc"))
            raise
