"""Launching Chromium for one participant: Debian's binary, a fresh profile, flags that keep it quiet.

Where the harness bends Playwright: it never downloads a browser (``playwright install``); it drives the
system's Chromium through ``executable_path``. Each participant gets a browser of its own with a persistent
context on a fresh profile folder, in the foreground tab: pages in background tabs are throttled to about one
frame per second, which would measure the throttling, not the platform.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

from harness.errors import BrowserError

DEFAULT_CHROMIUM = "/usr/bin/chromium"
INSTALL_HINT = "install Chromium (Debian: apt-get install chromium) or set [browser] chromium in the scenario"

# Keep Chromium off the network except for the meeting itself, and out of the way of automation.
QUIET_FLAGS: tuple[str, ...] = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--metrics-recording-only",
    # No --disable-features here: it would replace Playwright's own list (which keeps Chromium from calling
    # home at start-up) instead of adding to it. Host candidates are plain addresses, not mDNS names, without
    # a flag: Chromium hides local addresses behind mDNS only from pages not granted the camera and
    # microphone, and every participant's context is granted both (no multicast announcements either).
)
MEDIA_FLAGS: tuple[str, ...] = (
    "--use-fake-ui-for-media-stream",  # grant camera and microphone without a prompt
    "--use-fake-device-for-media-stream",  # apps that enumerate devices see one (our wrapper feeds them)
    "--autoplay-policy=no-user-gesture-required",
    # A page that is not in front is still a participant in front of its screen.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)


def find_chromium(configured: str | None = None) -> str:
    """The Chromium executable to drive; :class:`BrowserError` with the install hint when there is none."""
    candidates = [configured] if configured else [DEFAULT_CHROMIUM, "chromium", "chromium-browser"]
    for candidate in candidates:
        path = shutil.which(candidate) if candidate else None
        if path:
            return path
    wanted = configured or DEFAULT_CHROMIUM
    raise BrowserError(f"browser participants need Chromium, and {wanted} was not found: {INSTALL_HINT}")


def check_playwright() -> None:
    """:class:`BrowserError` when Playwright for Python is missing (it is a dependency of confbench)."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        raise BrowserError("browser participants need Playwright for Python: pip install playwright "
                           "(never `playwright install`: confbench drives the system's Chromium)") from None


def flags(extra: Sequence[str] = ()) -> list[str]:
    """Command-line flags for one participant's Chromium."""
    out = [*QUIET_FLAGS, *MEDIA_FLAGS, *extra]
    if os.geteuid() == 0:
        out.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox on
    return out


def new_profile(participant: str) -> Path:
    """A fresh, empty profile folder for one participant (removed by :func:`remove_profile`)."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in participant)[:40]
    return Path(tempfile.mkdtemp(prefix=f"confbench-chromium-{safe}-"))


def remove_profile(path: Path) -> None:
    """Delete a profile folder made by :func:`new_profile` (best effort)."""
    shutil.rmtree(path, ignore_errors=True)


async def launch(playwright: Any, executable: str, profile: Path, timeout_s: float) -> Any:
    """A headless persistent context (its own browser process) on ``profile``."""
    try:
        return await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=flags(),
            permissions=["camera", "microphone"], timeout=timeout_s * 1000,
            viewport={"width": 1280, "height": 720},
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BrowserError(f"Chromium ({executable}) did not start: {first}") from None


def browser_root(profile: Path) -> psutil.Process | None:
    """The main Chromium process of the browser using ``profile`` (found by its ``--user-data-dir``)."""
    marker = f"--user-data-dir={profile}"
    for proc in psutil.process_iter(["cmdline", "ppid"]):
        try:
            cmdline = proc.info["cmdline"] or []
        except psutil.Error:
            continue
        if marker in cmdline and not any(arg.startswith("--type=") for arg in cmdline):
            return proc
    return None


def process_tree(root: psutil.Process) -> list[psutil.Process]:
    """``root`` and every process below it (renderer, GPU, network and audio services)."""
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []
