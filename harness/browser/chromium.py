"""Launching Chromium for one participant: Debian's binary, a fresh profile, flags that keep it quiet.

Where the harness bends Playwright: it never downloads a browser (``playwright install``); it drives the
system's Chromium through ``executable_path``. Each participant gets a browser of its own with a persistent
context on a fresh profile folder, in the foreground tab: pages in background tabs are throttled to about one
frame per second, which would measure the throttling, not the platform.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


def secure_origins(*urls: str) -> list[str]:
    """The plain-HTTP origins among ``urls`` that Chromium must treat as secure for the call to work.

    Camera, microphone and ``navigator.mediaDevices`` exist only in secure contexts: HTTPS, or HTTP on
    loopback. A server confbench deployed on a namespace link (``harness.browser.confinement``) is plain HTTP
    on a test-network address, which a person's browser would never meet; such origins are declared secure
    (``--unsafely-treat-insecure-origin-as-secure``). Loopback and HTTPS origins need nothing.
    """
    origins: list[str] = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or parts.hostname == "localhost":
            continue
        try:
            if ipaddress.ip_address(parts.hostname).is_loopback:
                continue
        except ValueError:
            pass  # a host name: declared as it is
        origin = f"http://{parts.netloc}"
        if origin not in origins:
            origins.append(origin)
    return origins


def flags(extra: Sequence[str] = (), secure: Sequence[str] = ()) -> list[str]:
    """Command-line flags for one participant's Chromium (``secure``: origins from :func:`secure_origins`)."""
    out = [*QUIET_FLAGS, *MEDIA_FLAGS, *extra]
    if secure:
        out.append(f"--unsafely-treat-insecure-origin-as-secure={','.join(secure)}")
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


async def launch(playwright: Any, executable: str, profile: Path, timeout_s: float,
                 secure: Sequence[str] = ()) -> Any:
    """A headless persistent context (its own browser process) on ``profile``; ``secure`` as in :func:`flags`."""
    try:
        return await playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=flags(secure=secure),
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
