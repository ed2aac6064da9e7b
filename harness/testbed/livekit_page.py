"""The LiveKit join page for browser participants: LiveKit's JavaScript SDK, bundled locally, served by confbench.

The page's sources are package data (``harness/browser/livekit/``: ``index.html``, ``join.js``, a
``package.json`` pinning ``livekit-client`` and ``esbuild``, and its lock file). :func:`ensure_page` installs
them once with npm into ``$XDG_CACHE_HOME/confbench/web/livekit-<hash>/`` (outside the repository; the hash
covers the sources, so a change rebuilds) and bundles ``join.js`` with esbuild into ``site/join.bundle.js``.
Nothing is fetched when a browser opens the page: confbench serves ``site/`` on loopback (``[serve]`` of the
platform file it writes beside it).

The access token a page needs is signed per participant by ``harness.systems.livekit.issue_token``, the
platform's ``prepare`` hook, with the API key and secret from the environment (as the native adapter signs its
own). The page is built here, with the testbeds, since it is a part of the system built from an npm package
(DESIGN.md §2), not of the browser participant that opens it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from harness.errors import BrowserError
from harness.testbed.cache import cache_home, locked

SOURCES = ("package.json", "package-lock.json", "join.js", "index.html", "platform.toml")
INSTALL_TIMEOUT_S = 600.0


def cache_folder() -> Path:
    """Where the built page lives (one folder per version of its sources)."""
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(_source(name).encode())
    return cache_home() / "web" / f"livekit-{digest.hexdigest()[:12]}"


def _source(name: str) -> str:
    return resources.files("harness.browser").joinpath("livekit", name).read_text(encoding="utf-8")


def ensure_page() -> Path:
    """The platform file of the built page, building it first if needed; :class:`BrowserError` in one line."""
    folder = cache_folder()
    platform = folder / "livekit.toml"
    if platform.exists():
        return platform
    folder.parent.mkdir(parents=True, exist_ok=True)
    with locked(folder.parent / f".{folder.name}.lock"):
        if not platform.exists():
            _build(folder)
    return platform


def _build(folder: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise BrowserError("the LiveKit join page needs npm to install livekit-client once (Debian: apt-get "
                           "install npm)")
    with tempfile.TemporaryDirectory(prefix="livekit-page-", dir=folder.parent) as tmp:
        work = Path(tmp)
        for name in SOURCES:
            (work / name).write_text(_source(name), encoding="utf-8")
        _run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], work, "installing livekit-client")
        site = work / "site"
        site.mkdir()
        _run([str(work / "node_modules" / ".bin" / "esbuild"), "join.js", "--bundle", "--format=iife",
              "--target=chrome100", "--minify", f"--outfile={site / 'join.bundle.js'}"], work, "bundling the page")
        shutil.copyfile(work / "index.html", site / "index.html")
        final = folder / "site"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(final, ignore_errors=True)
        shutil.copytree(site, final)
        text = _source("platform.toml").replace("{site}", str(final))
        (folder / "livekit.toml.tmp").write_text(text, encoding="utf-8")
        os.replace(folder / "livekit.toml.tmp", folder / "livekit.toml")  # last: a platform file means a whole page


def _run(argv: list[str], cwd: Path, what: str) -> None:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BrowserError(f"LiveKit join page: {what} took longer than {INSTALL_TIMEOUT_S:g} s") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise BrowserError(f"LiveKit join page: {what} failed: {lines[-1] if lines else done.returncode}")


def main() -> int:
    """Build the page (what ``.ci/run`` calls); print where it is, or the one line saying why not."""
    try:
        print(f"LiveKit join page: {ensure_page()}")
    except BrowserError as exc:
        print(f"LiveKit join page: unavailable: {exc}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
