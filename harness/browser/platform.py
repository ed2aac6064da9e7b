"""How a person joins a web app: a meeting URL and the steps they take, as one declarative file.

A web platform is a TOML file (built-ins in ``harness/browser/platforms/``, or any path)::

    name = "reference"
    description = "confbench's reference SFU, its own web client"
    tested = true                       # false: a template nobody has run here (documented as such)
    url = "{base}/app/?room={room}"     # {base}: the system's URL; {room}, {participant}: as in the scenario
    in_call_timeout_s = 20              # optional, default: the scenario's join_timeout_s

    [[join]]                            # the steps, in order; one action per step
    fill = "#name"                      # type text into a field ...
    value = "{participant}"             # ... this text
    [[join]]
    click = "#join"                     # click a button or link
    [[join]]
    wait = "#state[data-state='in-call']"   # wait until an element is visible

    [[leave]]
    click = "#leave"

Placeholders in the URL and in step values: ``{base}`` (where the app is: the system's URL, or confbench's own
server for ``[serve]`` platforms), ``{system_url}`` (the system's URL), ``{room}``, ``{room_number}`` (the room
as a number: digits as they are, other names as a stable 31-bit hash, as the janus adapter does),
``{participant}`` and ``{participant_alnum}`` (letters and digits only, for apps that refuse anything else).

A platform whose app is a folder of static files (Janus's demos) can have confbench serve it on loopback::

    [serve]
    root = "/usr/share/janus/demos"
    [serve.override]                    # files replaced by a template, e.g. to point the app at the system
    "settings.js" = "var server = \"{system_url}\";"

A platform may name a ``prepare`` hook, ``"module:function"``, awaited before each participant opens the
meeting with ``(meeting, video_codec, timeout_s)``: e.g. Janus's demo cannot create its room, so
``harness.browser.janus_room:ensure_room`` creates it as the janus adapter would. A hook may return a mapping
of placeholders for that participant's URL and steps (LiveKit's page gets its access token as ``{livekit_token}``,
typed into the page rather than put in a URL that error messages would repeat).

Actions: ``fill`` (+ ``value``), ``click``, ``wait`` (an element visible), ``press`` (+ ``key``, e.g.
``Enter``), ``check`` (a checkbox), ``wait_for_js`` (a JavaScript expression that becomes truthy),
``sleep_ms``. Camera and microphone permissions are granted by the browser's flags, so no step is needed for
them; the page's getUserMedia gets confbench's synthetic camera and microphone whatever the app asks for.

A platform that needs code (a login, an iframe, a dialog that only sometimes appears) is one Python module:
subclass :class:`WebPlatform` and override :meth:`WebPlatform.join` / :meth:`WebPlatform.leave`.
See ``docs/browser.md``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import tomllib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from harness.errors import BrowserError, SystemError_
from harness.host.participant import alnum_name

ACTIONS = ("fill", "click", "wait", "press", "check", "wait_for_js", "sleep_ms")
_STEP_KEYS = {*ACTIONS, "value", "key", "timeout_s", "optional"}


@dataclass(frozen=True, slots=True)
class Step:
    """One thing a person does on the page."""

    action: str
    target: str
    value: str | None = None
    timeout_s: float | None = None
    optional: bool = False
    """A step that may not apply (a cookie banner that is not always shown): failing it is not an error."""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r} (known: {', '.join(ACTIONS)})")
        if self.action == "fill" and self.value is None:
            raise ValueError("a fill step needs a value")
        if self.action == "press" and not self.value:
            raise ValueError("a press step needs a key")

    def describe(self) -> str:
        """A short text naming the step, for error messages."""
        return f"{self.action} {self.target!r}"


@dataclass(frozen=True, slots=True)
class Meeting:
    """The meeting one participant joins."""

    base: str
    room: str
    participant: str
    system_url: str = ""
    extra: tuple[tuple[str, str], ...] = ()
    """Placeholders a ``prepare`` hook returned for this participant (e.g. an access token)."""

    def fill(self, template: str) -> str:
        """``template`` with its placeholders replaced (see the module docstring)."""
        alnum = alnum_name(self.participant)
        for key, value in self.extra:
            template = template.replace("{" + key + "}", value)
        return (template.replace("{base}", self.base.rstrip("/")).replace("{system_url}", self.system_url)
                .replace("{room_number}", str(room_number(self.room))).replace("{room}", self.room)
                .replace("{participant_alnum}", alnum).replace("{participant}", self.participant))


def room_number(room: str) -> int:
    """A room name as a number: digits as they are, anything else a stable 31-bit hash (never 0)."""
    if room.isdigit():
        return int(room)
    return zlib.crc32(room.encode()) & 0x7FFFFFFF or 1


@dataclass(frozen=True, slots=True)
class Serve:
    """Static files confbench serves on loopback for a platform, with some replaced by templates."""

    root: str
    override: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class WebPlatform:
    """A web app's join and leave steps (see the module docstring for the file format)."""

    name: str
    url: str
    join_steps: tuple[Step, ...] = ()
    leave_steps: tuple[Step, ...] = ()
    description: str = ""
    tested: bool = False
    in_call_timeout_s: float | None = None
    source: str = "<memory>"
    notes: tuple[str, ...] = field(default=())
    serve: Serve | None = None
    prepare: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must not be empty")
        if not self.url.startswith(("http://", "https://", "{base}")):
            raise ValueError("url must be an http(s) URL template or start with {base}")
        if self.prepare is not None and ":" not in self.prepare:
            raise ValueError("prepare must be \"module:function\"")

    def meeting_url(self, meeting: Meeting) -> str:
        """The URL a participant opens."""
        return meeting.fill(self.url)

    async def join(self, page: Any, meeting: Meeting, timeout_s: float, video_codec: str = "VP8") -> None:
        """Open the meeting and take the join steps; :class:`SystemError_` naming the step that failed."""
        if self.prepare is not None:
            module, _, function = self.prepare.partition(":")
            try:
                hook = getattr(importlib.import_module(module), function)
            except (ImportError, AttributeError) as exc:
                raise BrowserError(f"{self.source}: prepare hook {self.prepare!r} not found: {exc}") from None
            try:
                extra = await asyncio.wait_for(hook(meeting, video_codec, timeout_s), timeout=timeout_s)
            except (SystemError_, TimeoutError, OSError) as exc:
                raise SystemError_(f"{self.name}: preparing the meeting failed: {_first_line(exc)}") from None
            if isinstance(extra, Mapping):  # placeholders for this participant's URL and steps
                meeting = dataclasses.replace(meeting, extra=tuple((str(k), str(v)) for k, v in extra.items()))
        url = self.meeting_url(meeting)
        try:
            await page.goto(url, wait_until="load", timeout=timeout_s * 1000)
        except Exception as exc:
            raise SystemError_(f"{self.name}: cannot open {url}: {_first_line(exc)}") from None
        await self._run(page, self.join_steps, meeting, timeout_s, "join")

    async def leave(self, page: Any, meeting: Meeting, timeout_s: float) -> None:
        """Take the leave steps (the caller closes the browser afterwards in any case)."""
        await self._run(page, self.leave_steps, meeting, timeout_s, "leave")

    async def _run(self, page: Any, steps: Sequence[Step], meeting: Meeting, timeout_s: float,
                   phase: str) -> None:
        for index, step in enumerate(steps):
            limit = step.timeout_s or timeout_s
            try:
                await asyncio.wait_for(_act(page, step, meeting, limit), timeout=limit + 1)
            except Exception as exc:
                if step.optional:
                    continue
                raise SystemError_(f"{self.name}: {phase} step {index + 1} ({step.describe()}) failed: "
                                   f"{_first_line(exc)}") from None


async def _act(page: Any, step: Step, meeting: Meeting, timeout_s: float) -> None:
    ms = timeout_s * 1000
    target = meeting.fill(step.target)
    if step.action == "fill":
        await page.fill(target, meeting.fill(step.value or ""), timeout=ms)
    elif step.action == "click":
        await page.click(target, timeout=ms)
    elif step.action == "wait":
        await page.wait_for_selector(target, state="visible", timeout=ms)
    elif step.action == "press":
        await page.press(target, step.value or "", timeout=ms)
    elif step.action == "check":
        await page.check(target, timeout=ms)
    elif step.action == "wait_for_js":
        await page.wait_for_function(target, timeout=ms)
    elif step.action == "sleep_ms":
        await asyncio.sleep(float(target) / 1000)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def parse_platform(data: Mapping[str, Any], source: str = "<memory>") -> WebPlatform:
    """A platform from TOML-shaped data; :class:`BrowserError` naming the file and the field."""
    known = {"name", "description", "tested", "url", "in_call_timeout_s", "join", "leave", "notes", "serve",
             "prepare"}
    for key in data:
        if key not in known:
            raise BrowserError(f"{source}: {key}: unknown key (known: {', '.join(sorted(known))})")
    steps: dict[str, tuple[Step, ...]] = {}
    for phase in ("join", "leave"):
        parsed = []
        for i, raw in enumerate(data.get(phase, [])):
            where = f"{source}: {phase}[{i}]"
            if not isinstance(raw, Mapping):
                raise BrowserError(f"{where}: must be a table ([[{phase}]])")
            unknown = set(raw) - _STEP_KEYS
            if unknown:
                raise BrowserError(f"{where}: unknown key {sorted(unknown)[0]!r}")
            actions = [a for a in ACTIONS if a in raw]
            if len(actions) != 1:
                raise BrowserError(f"{where}: needs exactly one action of {', '.join(ACTIONS)}")
            action = actions[0]
            try:
                parsed.append(Step(action=action, target=str(raw[action]),
                                   value=str(raw.get("value", raw.get("key"))) if ("value" in raw or "key" in raw)
                                   else None,
                                   timeout_s=float(raw["timeout_s"]) if "timeout_s" in raw else None,
                                   optional=bool(raw.get("optional", False))))
            except ValueError as exc:
                raise BrowserError(f"{where}: {exc}") from None
        steps[phase] = tuple(parsed)
    serve = None
    if "serve" in data:
        raw_serve = data["serve"]
        if not isinstance(raw_serve, Mapping) or not isinstance(raw_serve.get("root"), str):
            raise BrowserError(f"{source}: serve: needs a root folder")
        override = raw_serve.get("override", {})
        if not isinstance(override, Mapping) or not all(isinstance(v, str) for v in override.values()):
            raise BrowserError(f"{source}: serve.override: must map file names to text")
        serve = Serve(root=raw_serve["root"], override=tuple((str(k), v) for k, v in override.items()))
    try:
        return WebPlatform(
            name=str(data.get("name", "")), url=str(data.get("url", "")), join_steps=steps["join"],
            leave_steps=steps["leave"], description=str(data.get("description", "")),
            tested=bool(data.get("tested", False)),
            in_call_timeout_s=float(data["in_call_timeout_s"]) if "in_call_timeout_s" in data else None,
            source=source, notes=tuple(str(n) for n in data.get("notes", [])), serve=serve,
            prepare=str(data["prepare"]) if "prepare" in data else None,
        )
    except ValueError as exc:
        raise BrowserError(f"{source}: {exc}") from None


def builtin_platforms() -> list[str]:
    """Names of the platform files shipped with confbench."""
    folder = resources.files("harness.browser").joinpath("platforms")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_platform(name_or_path: str) -> WebPlatform:
    """A built-in platform by name (e.g. ``reference``, ``jitsi``) or a platform file by path."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml") or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise BrowserError(f"{path}: cannot read the platform file: {exc.strerror or exc}") from None
        source = str(path)
    else:
        entry = resources.files("harness.browser").joinpath("platforms", f"{name_or_path}.toml")
        if not entry.is_file():
            known = ", ".join(builtin_platforms())
            raise BrowserError(f"unknown web platform {name_or_path!r}; built-in: {known}; or give a .toml path")
        text = entry.read_text(encoding="utf-8")
        source = f"platforms/{name_or_path}.toml"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BrowserError(f"{source}: not valid TOML: {exc}") from None
    return parse_platform(data, source)
