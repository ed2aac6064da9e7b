"""Meetecho's simple-whip-server (Debian's package) in front of a local Janus: a WHIP endpoint confbench did not write.

Debian packages the server as pure JavaScript, but on a machine whose Node.js does not come from Debian its
dependencies cannot be installed with apt (Debian's ``nodejs`` conflicts with it). So the testbed installs it once
into the cache, outside the repository (``$XDG_CACHE_HOME/confbench/simple-whip-server/<version>/``):

1. ``apt-get download simple-whip-server=<version>`` (the package from Debian's packages, version pinned here,
   :data:`VERSION`) and ``dpkg -x``: its ``src/`` (``server.js``, ``whip-janus.js``) and ``web/``;
2. ``npm ci`` of the Node modules ``server.js`` requires, at the versions Debian 12 ships
   (``simple_whip_server/package.json`` and its lock file, package data beside this module).

Each start copies the two scripts into a folder of its own, writes their ``config.js`` there (the Janus
WebSocket API to use, the port, no ICE servers) and runs them with the machine's ``node`` in Janus's network
namespace, so that the WHIP server reaches Janus and the participants reach the WHIP server on the same link.
No apt-get, dpkg or npm, or a refusal of either, makes the system unavailable with one line
(:func:`unavailable_reason`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from harness.errors import TestbedError
from harness.testbed.cache import cache_home, locked
from harness.testbed.janus import LocalJanus
from harness.testbed.served import NamespacedServer, end_process

PACKAGE = "simple-whip-server"
#: The simple-whip-server under test (Debian 12's package): the one place its version is pinned.
VERSION = "0.0~git20230201-1"
PORT = 7080
REST = "/whip"
START_TIMEOUT_S = 30.0
INSTALL_TIMEOUT_S = 600.0
NODE_SOURCES = ("package.json", "package-lock.json")
NO_ROOT_HINT = ("point the harness at a running pair instead: --system janus-whip=http://HOST:7080/whip "
                "(Janus at ws://HOST:8188, or ?janus=ws://...)")


class WhipServerUnavailable(TestbedError):
    """simple-whip-server cannot be installed or started here: one line."""


def cache_folder() -> Path:
    """Where the installed server lives (one folder per pinned version)."""
    return cache_home() / PACKAGE / VERSION


def installed() -> Path | None:
    """The installed server's folder if it was installed before (never installs)."""
    folder = cache_folder()
    return folder if (folder / ".installed").exists() else None


_failure: list[WhipServerUnavailable] = []


def ensure_installed() -> Path:
    """The installed server's folder, installing it first if needed; :class:`WhipServerUnavailable` otherwise.

    Concurrent callers wait for one install under a file lock; a failure is remembered for this process.
    """
    done = installed()
    if done is not None:
        return done
    if _failure:
        raise _failure[0]
    folder = cache_folder()
    try:
        for tool, package in (("apt-get", "apt"), ("dpkg", "dpkg"), ("npm", "npm"), ("node", "nodejs or npm")):
            if shutil.which(tool) is None:
                raise WhipServerUnavailable(f"{PACKAGE} needs '{tool}' to be installed once (Debian's {package})")
        folder.parent.mkdir(parents=True, exist_ok=True)
        with locked(folder.parent / f".{VERSION}.lock"):
            if installed() is None:
                _install(folder)
    except WhipServerUnavailable as exc:
        _failure.append(exc)
        raise
    return folder


def _install(folder: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="install-", dir=folder.parent) as tmp:
        work = Path(tmp)
        _run(["apt-get", "download", "-q", f"{PACKAGE}={VERSION}"], work,
             f"downloading {PACKAGE} {VERSION} from Debian's packages (after apt-get update?)")
        debs = sorted(work.glob(f"{PACKAGE}_*.deb"))
        if not debs:
            raise WhipServerUnavailable(f"apt-get download gave no {PACKAGE} package")
        _run(["dpkg", "-x", str(debs[0]), "root"], work, f"unpacking {debs[0].name}")
        shipped = work / "root" / "usr" / "share" / PACKAGE
        if not (shipped / "src" / "server.js").exists():
            raise WhipServerUnavailable(f"{debs[0].name} has no src/server.js")
        stage = work / "stage"
        shutil.copytree(shipped, stage, symlinks=True)
        (stage / "src" / "config.js").unlink(missing_ok=True)  # a link to /etc: each start writes its own
        for name in NODE_SOURCES:
            text = resources.files("harness.testbed").joinpath("simple_whip_server", name).read_text("utf-8")
            (stage / name).write_text(text, encoding="utf-8")
        _run(["npm", "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"], stage,
             "installing its Node modules")
        (stage / ".installed").write_text(f"{PACKAGE} {VERSION}\n")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(stage, folder)  # last: a folder in the cache is always a whole install


def _run(argv: list[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise WhipServerUnavailable(f"{PACKAGE}: {what} took longer than {INSTALL_TIMEOUT_S:g} s") from None
    except OSError as exc:
        raise WhipServerUnavailable(f"{PACKAGE}: {what} failed: {exc}") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines()
                 if line.strip() and not line.startswith("W:")]
        raise WhipServerUnavailable(f"{PACKAGE}: {what} failed: {lines[-1] if lines else done.returncode}")


def unavailable_reason() -> str | None:
    """Why the local Janus + simple-whip-server testbed cannot run here (None when it can); installs once."""
    if os.geteuid() != 0:
        return "the local janus-whip testbed needs root (network namespaces)"
    if shutil.which("janus") is None:
        return "Debian's janus package is not installed (apt-get install janus)"
    if shutil.which("ip") is None:
        return "the local janus-whip testbed needs the 'ip' command (Debian's iproute2)"
    try:
        ensure_installed()
    except TestbedError as exc:
        return str(exc)
    return None


def _config(janus_ws: str, port: int) -> str:
    """The server's ``config.js``: the Janus to publish into, the port, plain HTTP, no ICE servers handed out."""
    return f"""module.exports = {{
\tjanus: {{ address: '{janus_ws}' }},
\tport: {port},
\trest: '{REST}',
\tallowTrickle: true,
\tstrictETags: false,
\ticeServers: []
}};
"""


class SimpleWhipServer(NamespacedServer):
    """simple-whip-server in the namespace of the Janus it fronts; :meth:`stop` ends it, not the namespace."""

    NAME = PACKAGE
    LOG = "simple-whip-server.log"
    READY_PORT = PORT
    READY_WHAT = "its WHIP port (it listens once it is connected to Janus)"

    @property
    def base_url(self) -> str:
        """The REST base: ``/create``, ``/endpoint/<id>``, ``/resource/<id>``, ``/healthcheck`` below it."""
        return f"http://{self.address}:{PORT}{REST}"

    @classmethod
    def start(cls, janus: LocalJanus, timeout_s: float = START_TIMEOUT_S) -> SimpleWhipServer:
        """Start the (installed, else installed now) server in ``janus``'s namespace; wait until it listens."""
        home = ensure_installed()
        node = shutil.which("node")
        if node is None:
            raise WhipServerUnavailable(f"{PACKAGE} needs Node.js ('node')")
        folder = Path(tempfile.mkdtemp(prefix="confbench-whip-server-"))
        proc = None
        try:
            src = folder / "src"
            src.mkdir()
            for name in ("server.js", "whip-janus.js"):
                shutil.copyfile(home / "src" / name, src / name)
            (src / "config.js").write_text(_config(janus.ws_url, PORT))
            (folder / "web").symlink_to(home / "web")
            env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "NODE_OPTIONS")}
            env.update(NODE_PATH=str(home / "node_modules"), NODE_ENV="production",
                       DEBUG="whip:*,-whip:debug,janus:*,-janus:debug,-janus:vdebug")
            # server.js serves web/ relative to its working directory: it runs in its own folder.
            proc = cls.launch(janus.namespace, folder, [node, str(src / "server.js")], env, cwd=folder)
            server = cls(janus.namespace, proc, folder)
            server.wait_ready(timeout_s)
            return server
        except BaseException:
            if proc is not None:
                end_process(proc)
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def stop(self, keep_log: Path | None = None) -> None:
        """Stop the server and remove its folder; the namespace stays (it is Janus's)."""
        try:
            end_process(self.proc)
            if keep_log is not None and self.log_path.exists():
                shutil.copyfile(self.log_path, keep_log)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def main() -> int:
    """``python -m harness.testbed.simple_whip``: install the pinned server once (what ``.ci/run`` calls)."""
    was = installed()
    try:
        folder = ensure_installed()
    except WhipServerUnavailable as exc:
        print(f"{PACKAGE} {VERSION}: unavailable: {exc}", flush=True)
        return 0
    print(f"{PACKAGE} {VERSION}: {'cached' if was else 'installed'}: {folder}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
