"""Servers and tools under test built from their Go module, once, into a cache outside the repository.

DESIGN.md §2 ("Systems built from source"): a system that Debian does not package is built by its testbed
from its Go module at a pinned version (:class:`GoTool`, declared once by the testbed that needs it). The
build goes to ``$CONFBENCH_GO_CACHE`` (default ``$XDG_CACHE_HOME/confbench/go``, i.e. ``~/.cache/confbench/go``):
``bin/<name>-<version>/<name>`` is the binary (named as the tool, so that its process is too), and Go's own
module and build caches (``GOMODCACHE``, ``GOCACHE``, ``GOPATH``) live beside it, so that a build of another
version or another tool reuses what the first downloaded and compiled.
Nothing is written into the repository, and nothing is committed.

The toolchain is used as it is installed (``GOTOOLCHAIN=local``: Go must not fetch another toolchain), and
modules come from the Go proxy the environment names. A missing toolchain or a refused module raises
:class:`GoBuildError` with one line (the last line Go printed), which a testbed turns into "system unavailable".

A testbed builds its pinned tools with :func:`build_all` (`python -m harness.testbed.livekit`, as `.ci/run` does).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import TestbedError
from harness.testbed.cache import cache_home, locked

CACHE_ENV = "CONFBENCH_GO_CACHE"
GO_ENV = "CONFBENCH_GO"
"""The ``go`` command to use (default: ``go`` on ``PATH``, else ``/usr/local/go/bin/go``)."""
BUILD_TIMEOUT_S = 45 * 60
_FALLBACK_GO = Path("/usr/local/go/bin/go")
_REPLACE_HINT = "contains one or more replace directives"


class GoBuildError(TestbedError):
    """A Go-built system cannot be built here (no toolchain, a refused module, a failed build): one line."""


@dataclass(frozen=True, slots=True)
class GoTool:
    """One program of a Go module at a pinned version.

    ``package`` is the import path of its ``main`` package (e.g. ``github.com/livekit/livekit-server/cmd/server``)
    and ``module`` the module that holds it (the part Go's proxy knows versions of).
    """

    name: str
    module: str
    package: str
    version: str

    def __post_init__(self) -> None:
        if not self.version.startswith("v"):
            raise ValueError(f"{self.name}: a Go module version starts with 'v', got {self.version!r}")
        if not self.package.startswith(self.module):
            raise ValueError(f"{self.name}: package {self.package} is not inside module {self.module}")

    @property
    def binary_name(self) -> str:
        """The binary's path under the cache's ``bin`` folder (one folder per version)."""
        return f"{self.name}-{self.version}/{self.name}"


def cache_root() -> Path:
    """Where Go-built binaries and Go's caches live (outside the repository)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    return cache_home() / "go"


def find_go() -> str:
    """The ``go`` command; :class:`GoBuildError` in one line when there is none."""
    wanted = os.environ.get(GO_ENV)
    if wanted:
        if shutil.which(wanted) is None:
            raise GoBuildError(f"{GO_ENV}={wanted} is not an executable Go toolchain")
        return wanted
    found = shutil.which("go") or (str(_FALLBACK_GO) if os.access(_FALLBACK_GO, os.X_OK) else None)
    if found is None:
        raise GoBuildError("no Go toolchain found (install Go, e.g. Debian's golang-go, or set CONFBENCH_GO)")
    return found


def go_env(root: Path | None = None) -> dict[str, str]:
    """The environment of every ``go`` command: caches under ``root``, no toolchain download, no cgo."""
    root = root or cache_root()
    env = dict(os.environ)
    env.update(GOPATH=str(root / "path"), GOCACHE=str(root / "cache"), GOMODCACHE=str(root / "mod"),
               GOTOOLCHAIN="local", CGO_ENABLED="0",
               # -modcacherw: the module cache stays deletable by rm -rf (Go makes it read-only otherwise).
               GOFLAGS="-modcacherw -trimpath")
    return env


def installed(tool: GoTool, root: Path | None = None) -> Path | None:
    """The cached binary of ``tool`` if it was built before, else None (never builds)."""
    path = (root or cache_root()) / "bin" / tool.binary_name
    return path if os.access(path, os.X_OK) else None


_failures: dict[GoTool, GoBuildError] = {}


def ensure_built(tool: GoTool, timeout_s: float = BUILD_TIMEOUT_S, quiet: bool = False) -> Path:
    """The binary of ``tool``, built first if the cache has none; :class:`GoBuildError` in one line otherwise.

    Concurrent callers (several test processes, two runs) wait for one build under a file lock. A failure is
    remembered for this process, so that a test session asks Go once, not once per test.
    """
    cached = installed(tool)
    if cached is not None:
        return cached
    if tool in _failures:
        raise _failures[tool]
    root = cache_root()
    try:
        go = find_go()
        (root / "bin").mkdir(parents=True, exist_ok=True)
        with locked(root / "bin" / f".{tool.name}-{tool.version}.lock"):
            cached = installed(tool)
            if cached is not None:
                return cached
            if not quiet:
                print(f"confbench: building {tool.name} {tool.version} from its Go module (once; cached in {root})",
                      file=sys.stderr, flush=True)
            return _build(go, tool, root, timeout_s)
    except GoBuildError as exc:
        _failures[tool] = exc
        raise


def _build(go: str, tool: GoTool, root: Path, timeout_s: float) -> Path:
    target = root / "bin" / tool.binary_name
    with tempfile.TemporaryDirectory(prefix=f"confbench-{tool.name}-", dir=root / "bin") as tmp:
        env = dict(go_env(root), GOBIN=tmp)
        done = _go(go, ["install", f"{tool.package}@{tool.version}"], env, root, timeout_s, tool)
        if done.returncode != 0 and _REPLACE_HINT in " ".join(done.stderr.split()):  # Go wraps its lines
            # `go install pkg@version` refuses modules whose go.mod replaces dependencies: build inside a copy
            # of the module, where it is the main module and its replacements hold.
            done = _build_in_module(go, tool, env, root, timeout_s, Path(tmp))
        if done.returncode != 0:
            raise GoBuildError(f"building {tool.name} {tool.version} failed: {_last_line(done.stderr)}")
        built = Path(tmp) / Path(tool.package).name
        if not built.exists():
            candidates = [p for p in Path(tmp).iterdir() if p.is_file() and os.access(p, os.X_OK)]
            if not candidates:
                raise GoBuildError(f"building {tool.name} {tool.version} produced no binary")
            built = candidates[0]
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(built, target)  # atomic: a binary in the cache is always a whole one
    return target


def _build_in_module(go: str, tool: GoTool, env: dict[str, str], root: Path, timeout_s: float,
                     out: Path) -> subprocess.CompletedProcess[str]:
    done = _go(go, ["mod", "download", "-json", f"{tool.module}@{tool.version}"], env, root, timeout_s, tool)
    if done.returncode != 0:
        return done
    import json

    source = Path(json.loads(done.stdout)["Dir"])
    with tempfile.TemporaryDirectory(prefix=f"confbench-{tool.name}-src-", dir=root) as work:
        copy = Path(work) / "src"
        shutil.copytree(source, copy)
        relative = tool.package[len(tool.module):].lstrip("/") or "."
        return _go(go, ["build", "-o", str(out / Path(tool.package).name), f"./{relative}"], env, copy,
                   timeout_s, tool)


def _go(go: str, args: list[str], env: dict[str, str], cwd: Path, timeout_s: float,
        tool: GoTool) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([go, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise GoBuildError(f"building {tool.name} {tool.version} took longer than {timeout_s:g} s") from None
    except OSError as exc:
        raise GoBuildError(f"cannot run {go}: {exc}") from None


def _last_line(stderr: str) -> str:
    """The line of Go's output that says what went wrong (skipping its progress lines)."""
    lines = [line.strip() for line in stderr.splitlines()
             if line.strip() and not line.lstrip().startswith("go: downloading")]
    if not lines:
        return "no output"
    # Go prints the failing fetch, then the server's reason on the next line; keep both.
    line = f"{lines[-2]} ({lines[-1]})" if lines[-1].startswith("server response:") and len(lines) > 1 else lines[-1]
    # The fetched URL names the registry's host: the line says "the module proxy" instead, so that no host name
    # reaches a log, a note or a results folder through it.
    return re.sub(r"https?://[^\s]*?/(?=[^\s]*@v/)", "the module proxy: ", line)


def build_all(tools: Sequence[GoTool]) -> int:
    """Build ``tools`` (a testbed's pinned Go tools); print one line per tool (built, cached, or why not).

    Exit status 0 even when a tool is unavailable: that system's tests then skip with the same line.
    """
    for tool in tools:
        started = time.monotonic()
        was_cached = installed(tool) is not None
        try:
            path = ensure_built(tool, quiet=True)
        except GoBuildError as exc:
            print(f"{tool.name} {tool.version}: unavailable: {exc}", flush=True)
            continue
        how = "cached" if was_cached else f"built in {time.monotonic() - started:.0f} s"
        print(f"{tool.name} {tool.version}: {how}: {path}", flush=True)
    return 0

