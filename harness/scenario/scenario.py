"""Scenarios: declarative TOML files turned into validated, frozen records.

A scenario says who joins (participant groups), what they send and receive, for how long, and which
thresholds the run must hold. Every error names the file and the field, in one line, because the CLI prints
it as is (DESIGN.md §5.6).
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import ScenarioError
from harness.scenario.faults import FaultError, ServerFault, parse_timeline
from harness.scenario.media import AudioSettings, ScreenSettings, VideoSettings
from harness.scenario.network import PRESET_DIR, NetworkProfile, ProfileError, parse_profile
from harness.scenario.thresholds import KNOWN_KEYS, Threshold, parse_threshold

MEDIA_KINDS = ("audio", "video")
ENGINES = ("native", "browser")
MAX_NAME = 100
"""The longest scenario name a file may give, in bytes of UTF-8: report folders, ``<prefix>-<name>-<suffix>-<UTC
time>``, stay well within 255."""
DEFAULT_RECONNECT_AFTER_S = 8.0
"""Silence before a participant starts again: longer than a short outage (which recovers by itself), about a
browser's ICE "disconnected" plus a client's grace before it rejoins."""
DEFAULT_RECONNECT_WITHIN_S = 30.0
MAX_PUBLISHERS_PER_ENCODER = 32
"""The cap on ``publishers_per_encoder``; why it exists: ``harness.media.pool``."""


SIMULCAST_LAYERS = ("q", "h", "f")
"""Simulcast layer names, lowest first (``harness.media.simulcast.LAYERS`` defines their sizes and rates)."""


@dataclass(frozen=True, slots=True)
class Group:
    """Participants that behave alike."""

    name: str
    count: int
    publish: tuple[str, ...] = MEDIA_KINDS
    subscribe: bool = True
    probe_fraction: float = 1.0
    """Share of received streams decoded for stamps (latency, frame loss); the others are measured
    from RTP and their encoded frames only (rate, freezes, loss, jitter), which costs far less."""
    join_delay_s: float = 0.0
    """Seconds each participant of the group waits, once Locust started it, before joining: late joiners."""
    stay_s: float | None = None
    """Seconds each participant stays in the call before it leaves (None: until the end): early leavers."""
    rejoin: bool = False
    """With ``stay_s``: a participant that leaves is replaced at once by a newcomer of the group (a new name),
    again and again until the run ends: churn. The first participants stay a random 10-100 % of ``stay_s`` so
    that they do not all leave at once. False: an early leaver stays away."""
    engine: str = "native"
    """``native`` (aiortc in the media host) or ``browser`` (a real Chromium on the system's web client)."""
    network: NetworkProfile | None = None
    """The group's access link (``harness.scenario.network``); None: no impairment (loopback)."""
    publishers_per_encoder: int = 1
    """How many of the group's publishers on one media host send the same encoded stream (1: each its
    own); see ``harness.media.pool`` for the cap and what it changes."""
    simulcast: tuple[str, ...] = ()
    """Simulcast layers each publisher of the group sends, among ``q``, ``h``, ``f`` (a quarter, half and the
    full size of ``[media.video]``; ``harness.media.simulcast``); empty: one encoding."""
    prefer_layer: str | None = None
    """The simulcast layer the group's subscribers ask for through the system's own mechanism (Janus's
    ``substream``); ``auto``: the client steps down on loss and probes back up
    (``harness.systems.layer_choice``), for systems that leave the choice to clients; None: the system's
    default (Janus: the top layer)."""
    adapt: bool = True
    """Whether the group's simulcast publishers drop their top layers when the SFU reports loss on them, and
    bring them back when it clears (``harness.media.adapt``); false keeps every layer at its fixed bitrate.
    Publishers of one encoding always send at the fixed ``bitrate_kbps``."""
    grow: bool = True
    """In a capacity search, whether the group grows with the others (in proportion to ``count``); False
    keeps it at ``count`` participants at every step, e.g. the presenters of a webinar whose audience grows."""
    screen_share: bool = False
    """Whether each participant of the group also shares a screen (``[media.screen]``): a second video
    stream, published as a participant of its own named ``<participant>-screen`` (``harness.host.participant``)."""
    pacing: bool = True
    """Whether native publishers pace their video packets as a browser's pacer does (``harness.media.pacer``);
    False sends every packet of a frame at once."""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValueError("name must be letters, digits, '-' or '_'")
        if self.count < 0:
            raise ValueError(f"count must not be negative, got {self.count}")
        if not 0.0 <= self.probe_fraction <= 1.0:
            raise ValueError(f"probe_fraction must be between 0 and 1, got {self.probe_fraction}")
        if self.join_delay_s < 0:
            raise ValueError(f"join_delay_s must not be negative, got {self.join_delay_s}")
        if self.stay_s is not None and self.stay_s <= 0:
            raise ValueError(f"stay_s must be positive, got {self.stay_s}")
        if self.rejoin and self.stay_s is None:
            raise ValueError("rejoin needs stay_s (how long each participant stays before a newcomer replaces it)")
        if not 1 <= self.publishers_per_encoder <= MAX_PUBLISHERS_PER_ENCODER:
            raise ValueError(f"publishers_per_encoder must be between 1 and {MAX_PUBLISHERS_PER_ENCODER}, "
                             f"got {self.publishers_per_encoder}")
        for kind in self.publish:
            if kind not in MEDIA_KINDS:
                raise ValueError(f"publish may list only {' and '.join(MEDIA_KINDS)}, got {kind!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.screen_share and self.engine != "native":
            raise ValueError("screen_share needs native participants (browsers share no synthetic screen yet)")
        if (any(rid not in SIMULCAST_LAYERS for rid in self.simulcast)
                or len(set(self.simulcast)) != len(self.simulcast) or len(self.simulcast) == 1):
            raise ValueError(f"simulcast lists two or three distinct layers among {', '.join(SIMULCAST_LAYERS)}, "
                             f"got {list(self.simulcast)}")
        if self.prefer_layer is not None and self.prefer_layer not in (*SIMULCAST_LAYERS, "auto"):
            raise ValueError(f"prefer_layer must be one of {', '.join(SIMULCAST_LAYERS)} or auto, "
                             f"got {self.prefer_layer!r}")
        if self.simulcast and self.engine != "native":
            raise ValueError("simulcast is sent by native participants only (a browser's layers are its own)")


@dataclass(frozen=True, slots=True)
class BrowserSettings:
    """``[browser]``: how browser participants run (used only by groups with ``engine = "browser"``)."""

    platform: str | None = None
    """A built-in web platform (``harness/browser/platforms/``) or a platform file; default: the system's
    own web client (``reference``, ``janus``)."""
    ice_servers: tuple[str, ...] = ()
    """STUN/TURN URLs the browsers may use; none by default, whatever the web app configures."""
    chromium: str | None = None
    """The Chromium executable (default ``/usr/bin/chromium``)."""

    def __post_init__(self) -> None:
        for url in self.ice_servers:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"ice_servers takes stun:, turn: or turns: URLs, got {url!r}")


CAPACITY_SLO_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("video_latency_ms.p95", "< 400"),
    ("packet_loss_pct", "< 2"),
    ("freezes_per_min", "< 2"),
    ("participants.failed", "== 0"),
)
"""The service-level objective a capacity step must meet unless ``[capacity.slo]`` says otherwise."""

CAPACITY_SLO_KEYS: frozenset[str] = frozenset(
    k for k in KNOWN_KEYS
    if not k.startswith(("sut_cpu_pct", "loadgen_", "participants.planned", "duration_s", "outages."))
)
"""Summary keys a capacity SLO may use: everything measured per step from the participants' samples."""


@dataclass(frozen=True, slots=True)
class CapacitySettings:
    """``[capacity]``: how ``confbench capacity`` ramps participants and what a step must meet."""

    start: int = 0
    """Participants at the first step (0: the groups' total)."""
    step: int = 0
    """Participants added per step (0: the same as ``start``)."""
    step_s: float = 20.0
    """Measured seconds per step, after everyone of the step is in the call and ``settle_s`` has passed."""
    settle_s: float = 5.0
    max_participants: int = 200
    max_duration_s: float = 1800.0
    """The whole search stops after this long, reporting what it knows so far."""
    step_backs: int = 2
    """How many steps back the search may take to confirm the knee after the SLO broke."""
    slo: tuple[Threshold, ...] = ()
    """The conditions; empty means :data:`CAPACITY_SLO_DEFAULTS`."""

    def __post_init__(self) -> None:
        if self.start < 0 or self.step < 0:
            raise ValueError("start and step must not be negative")
        if not 1 <= self.step_s <= 3600 or not 0 <= self.settle_s <= 600:
            raise ValueError("step_s must be 1..3600 and settle_s 0..600 seconds")
        if not 1 <= self.max_participants <= 100_000:
            raise ValueError(f"max_participants must be 1..100000, got {self.max_participants}")
        if not 10 <= self.max_duration_s <= 7 * 24 * 3600:
            raise ValueError("max_duration_s must be between 10 and 604800")
        if not 0 <= self.step_backs <= 10:
            raise ValueError(f"step_backs must be 0..10, got {self.step_backs}")
        for threshold in self.slo:
            if threshold.key not in CAPACITY_SLO_KEYS:
                raise ValueError(f"{threshold.key!r} cannot be judged per step (the server's and the load "
                                 "generator's own figures are not participants' quality)")

    @property
    def objectives(self) -> tuple[Threshold, ...]:
        """The SLO in force: the scenario's, or the defaults."""
        return self.slo or tuple(parse_threshold(k, c) for k, c in CAPACITY_SLO_DEFAULTS)

    def to_dict(self) -> dict[str, Any]:
        """As it would be written in the scenario (the SLO as conditions)."""
        data = asdict(self)
        data["slo"] = {t.key: f"{t.op} {t.bound:g}" for t in self.slo}
        return data


@dataclass(frozen=True, slots=True)
class Scenario:
    """One benchmark scenario, resolved and validated."""

    name: str
    groups: tuple[Group, ...]
    duration_s: float = 30.0
    spawn_rate: float = 2.0
    room: str = "confbench"
    join_timeout_s: float = 20.0
    description: str = ""
    video: VideoSettings = field(default_factory=VideoSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    screen: ScreenSettings = field(default_factory=ScreenSettings)
    thresholds: tuple[Threshold, ...] = ()
    systems: tuple[str, ...] = ("p2p",)
    """Systems ``confbench run`` uses when none is named on the command line (``NAME`` or ``NAME=URL``)."""
    min_effect: tuple[tuple[str, float], ...] = ()
    """``[min_effect]``: per summary key, the smallest relative change a comparison may call a verdict."""
    browser: BrowserSettings = field(default_factory=BrowserSettings)
    capacity: CapacitySettings | None = None
    """``[capacity]``: settings of ``confbench capacity`` (None: the defaults)."""
    timeline: tuple[ServerFault, ...] = ()
    """``[[timeline]]``: the server killed or restarted during the run (``harness.scenario.faults``)."""
    reconnect_after_s: float = DEFAULT_RECONNECT_AFTER_S
    """A publishing participant that has had no receiver report on what it sends for this long starts
    again with a new session, as a real client would after its connection died."""
    reconnect_within_s: float = DEFAULT_RECONNECT_WITHIN_S
    """How long a participant keeps trying to come back before it gives up (``reconnect_failed``)."""
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("name must not be empty")
        # The name names report folders (reports/<name>-<time>): it must stay one folder inside reports/.
        if not self.name.isprintable() or "/" in self.name or "\\" in self.name or not self.name.strip("."):
            raise ValueError("name must be printable characters, without '/' or '\\', and not '.' or '..' "
                             f"(it names report folders), got {self.name!r}")
        if not (1 <= self.duration_s <= 7 * 24 * 3600):
            raise ValueError("duration_s must be between 1 and 604800")
        if not (0 < self.spawn_rate <= 1000):
            raise ValueError("spawn_rate must be > 0 and <= 1000 participants per second")
        if not (1 <= self.join_timeout_s <= 600):
            raise ValueError("join_timeout_s must be between 1 and 600")
        if not (1 <= self.reconnect_after_s <= 600):
            raise ValueError("reconnect_after_s must be between 1 and 600")
        if not (1 <= self.reconnect_within_s <= 3600):
            raise ValueError("reconnect_within_s must be between 1 and 3600")
        if not self.groups:
            raise ValueError("at least one [[groups]] entry is needed")
        names = [g.name for g in self.groups]
        if len(set(names)) != len(names):
            raise ValueError("group names must be unique")
        if self.participants < 1:
            raise ValueError("the groups must add up to at least one participant")
        if not self.systems or not all(s and not s.startswith("=") for s in self.systems):
            raise ValueError("systems must list at least one NAME or NAME=URL")
        fixed = sum(g.count for g in self.groups if not g.grow)
        if fixed and not any(g.grow and g.count for g in self.groups):
            raise ValueError("grow = false on every group: a capacity search needs a group that grows")
        if fixed and self.capacity is not None and self.capacity.start and self.capacity.start <= fixed:
            raise ValueError(f"capacity.start ({self.capacity.start}) must exceed the {fixed} participants of "
                             "the groups that do not grow")

    @property
    def participants(self) -> int:
        """Planned number of participants over all groups."""
        return sum(g.count for g in self.groups)

    @property
    def impaired(self) -> bool:
        """Whether any group has a network profile that changes something (the run then needs a testbed)."""
        return any(g.network is not None and not g.network.clean for g in self.groups)

    @property
    def browser_groups(self) -> tuple[Group, ...]:
        """Groups of browser participants (with at least one participant)."""
        return tuple(g for g in self.groups if g.engine == "browser" and g.count > 0)

    @property
    def ramp_s(self) -> float:
        """Seconds until every participant started joining: the spawn rate's ramp, plus the latest join delay."""
        return self.participants / self.spawn_rate + max((g.join_delay_s for g in self.groups), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario as plain data (recorded in every manifest)."""
        data = asdict(self)
        data["groups"] = [_group_dict(g) for g in self.groups]
        # Defaults left out so that scenarios written before browser participants keep their digest.
        for group in data["groups"]:
            if group["engine"] == "native":
                del group["engine"]
        data.pop("browser", None)
        # Screen share and speakers left out at their defaults: scenarios without them keep their digest.
        if self.screen == ScreenSettings():
            data.pop("screen")
        for key in ("speakers", "speaker_switch_s"):
            if data["audio"][key] == getattr(AudioSettings(), key):
                del data["audio"][key]
        if self.browser != BrowserSettings():
            data["browser"] = {k: (list(v) if isinstance(v, tuple) else v)
                               for k, v in asdict(self.browser).items() if v not in (None, ())}
        for g, group in zip(self.groups, data["groups"], strict=True):
            # Left out when absent so that scenarios without networks keep the digest they had before.
            if g.network is None:
                del group["network"]
            else:
                group["network"] = g.network.to_dict()
        data["systems"] = list(self.systems)
        data["thresholds"] = {t.key: f"{t.op} {t.bound:g}" for t in self.thresholds}
        # Left out when empty so that scenarios without it keep the digest they had before it existed.
        data.pop("min_effect", None)
        if self.min_effect:
            data["min_effect"] = dict(self.min_effect)
        # The same for [capacity]: a scenario without it keeps its digest.
        data.pop("capacity", None)
        if self.capacity is not None:
            data["capacity"] = self.capacity.to_dict()
        # And for faults and reconnection: left out when absent or at their defaults.
        data.pop("timeline", None)
        if self.timeline:
            data["timeline"] = [fault.to_dict() for fault in self.timeline]
        for key, default in (("reconnect_after_s", DEFAULT_RECONNECT_AFTER_S),
                             ("reconnect_within_s", DEFAULT_RECONNECT_WITHIN_S)):
            if data[key] == default:
                del data[key]
        return data

    def sha256(self) -> str:
        """Digest of the resolved scenario (source path excluded), so runs of the same load compare."""
        data = self.to_dict()
        # Where it came from and which systems run it do not change the load: runs of it stay comparable.
        data.pop("source", None)
        data.pop("systems", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def with_overrides(self, *, duration_s: float | None = None, participants: int | None = None) -> Scenario:
        """Apply command-line overrides; a participant count is spread over the groups in proportion."""
        try:
            result = self
            if duration_s is not None:
                result = replace(result, duration_s=duration_s)
            if participants is not None:
                result = replace(result, groups=_scale_groups(result.groups, participants))
            return result
        except ValueError as exc:
            raise ScenarioError(f"{self.source}: command-line override: {exc}") from None


def _group_dict(group: Group) -> dict[str, Any]:
    data = dict(asdict(group), publish=list(group.publish))
    # Left out at its default so that scenarios without it keep the digest they had before it existed.
    if group.publishers_per_encoder == 1:
        data.pop("publishers_per_encoder")
    if group.grow:
        data.pop("grow")
    if not group.screen_share:
        data.pop("screen_share")
    if group.pacing:
        data.pop("pacing")
    if not group.simulcast:
        data.pop("simulcast")
    else:
        data["simulcast"] = list(group.simulcast)
    if group.prefer_layer is None:
        data.pop("prefer_layer")
    if group.adapt:
        data.pop("adapt")
    if not group.rejoin:
        data.pop("rejoin")
    return data


def _scale_groups(groups: tuple[Group, ...], total: int) -> tuple[Group, ...]:
    if total < 1:
        raise ValueError(f"--participants must be at least 1, got {total}")
    planned = sum(g.count for g in groups)
    shares = [g.count * total / planned for g in groups]
    counts = [math.floor(s) for s in shares]
    # Largest remainders get the participants lost to rounding, so the total is exact.
    order = sorted(range(len(groups)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return tuple(replace(g, count=c) for g, c in zip(groups, counts, strict=True))


_TOP_KEYS = {
    "name": str, "description": str, "duration_s": float, "spawn_rate": float, "room": str,
    "join_timeout_s": float, "media": dict, "groups": list, "thresholds": dict, "min_effect": dict,
    "systems": list, "browser": dict, "capacity": dict, "timeline": list, "reconnect_after_s": float,
    "reconnect_within_s": float,
}
_BROWSER_KEYS = {"platform": str, "ice_servers": list, "chromium": str}
_MEDIA_KEYS = {"video": dict, "audio": dict, "screen": dict}
_VIDEO_KEYS = {"width": int, "height": int, "fps": int, "codec": str, "bitrate_kbps": int}
_SCREEN_KEYS = {"width": int, "height": int, "fps": int, "bitrate_kbps": int}
_AUDIO_KEYS = {"pulse_period_s": float, "speakers": str, "speaker_switch_s": float}
_CAPACITY_KEYS = {"start": int, "step": int, "step_s": float, "settle_s": float, "max_participants": int,
                  "max_duration_s": float, "step_backs": int, "slo": dict}
# network (a preset name or a table): parsed by harness.scenario.network
_GROUP_KEYS = {"name": str, "count": int, "publish": list, "subscribe": bool, "probe_fraction": float,
               "join_delay_s": float, "stay_s": float, "rejoin": bool, "engine": str, "publishers_per_encoder": int,
               "grow": bool, "screen_share": bool, "pacing": bool,
               "network": dict,  # network (a preset name or a table): parsed by harness.scenario.network
               "simulcast": list, "prefer_layer": str, "adapt": bool}


def _check(where: str, table: Mapping[str, Any], schema: Mapping[str, type]) -> dict[str, Any]:
    """Reject unknown keys and wrong types; ints are accepted where floats are expected."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if value is None and key in schema:
            continue  # a resolved scenario (scenario.json) writes an optional field left unset as null
        if key not in schema:
            known = ", ".join(sorted(schema))
            raise _FieldError(f"{where}{key}", f"unknown key (known: {known})")
        want = schema[key]
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if want is float and ok and not math.isfinite(value):
            # TOML has nan and inf; no field means them (a range check such as ``x < 0`` lets nan through).
            raise _FieldError(f"{where}{key}", f"must be a finite number, got {value}")
        if not ok:
            raise _FieldError(f"{where}{key}", f"must be {_TYPE_NAMES[want]}, got {type(value).__name__}")
        out[key] = value
    return out


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               dict: "a table", list: "a list"}


class _FieldError(Exception):
    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name


def parse_scenario(data: Mapping[str, Any], source: str = "<memory>") -> Scenario:
    """Validate a scenario given as TOML-shaped data; raises :class:`ScenarioError` naming source and field."""
    try:
        return _parse(data, source)
    except _FieldError as exc:
        raise ScenarioError(f"{source}: {exc.field_name}: {exc}") from None


def _build(field_name: str, cls: type, kwargs: dict[str, Any]) -> Any:
    try:
        return cls(**kwargs)
    except ValueError as exc:
        # The record's own message says which of its fields is wrong, e.g. "count must not be negative".
        raise _FieldError(field_name, str(exc)) from None


def _network(where: str, raw: Any, source: str) -> NetworkProfile:
    # Presets next to the scenario file come first, then the shipped ones.
    search = [PRESET_DIR]
    if source != "<memory>":
        search.insert(0, Path(source).resolve().parent / "networks")
    try:
        return parse_profile(raw, search=search)
    except ProfileError as exc:
        raise _FieldError(f"{where}.network{'.' + exc.field if exc.field else ''}", str(exc)) from None


def _parse(data: Mapping[str, Any], source: str) -> Scenario:
    top = _check("", data, _TOP_KEYS)
    media = _check("media.", top.pop("media", {}), _MEDIA_KEYS)
    video = _build("media.video", VideoSettings, _check("media.video.", media.get("video", {}), _VIDEO_KEYS))
    audio = _build("media.audio", AudioSettings, _check("media.audio.", media.get("audio", {}), _AUDIO_KEYS))
    screen = _build("media.screen", ScreenSettings,
                    _check("media.screen.", media.get("screen", {}), _SCREEN_KEYS))
    groups = []
    for i, raw in enumerate(top.pop("groups", [])):
        where = f"groups[{i}]"
        if not isinstance(raw, dict):
            raise _FieldError(where, "must be a table ([[groups]])")
        raw = dict(raw)
        network = _network(where, raw.pop("network"), source) if "network" in raw else None
        g = _check(f"{where}.", raw, _GROUP_KEYS)
        if network is not None:
            g["network"] = network
        if "name" not in g or "count" not in g:
            raise _FieldError(where, "needs a name and a count")
        if "publish" in g:
            if not all(isinstance(k, str) for k in g["publish"]):
                raise _FieldError(f"{where}.publish", "must be a list of strings")
            g["publish"] = tuple(g["publish"])
        if "simulcast" in g:
            if not all(isinstance(k, str) for k in g["simulcast"]):
                raise _FieldError(f"{where}.simulcast", "must be a list of layer names such as [\"q\", \"h\", \"f\"]")
            g["simulcast"] = tuple(g["simulcast"])
        groups.append(_build(where, Group, g))
    thresholds = []
    for key, condition in top.pop("thresholds", {}).items():
        if not isinstance(condition, str):
            raise _FieldError(f"thresholds.{key}", f"must be a string like \"< 150\", got {condition!r}")
        try:
            thresholds.append(parse_threshold(key, condition))
        except ValueError as exc:
            raise _FieldError(f"thresholds.{key}", str(exc)) from None
    min_effect = []
    for key, fraction in top.pop("min_effect", {}).items():
        if key not in KNOWN_KEYS:
            raise _FieldError(f"min_effect.{key}", "unknown summary key (see harness.scenario.thresholds.KNOWN_KEYS)")
        if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 10:
            raise _FieldError(f"min_effect.{key}", f"must be a fraction such as 0.1 (10 %), got {fraction!r}")
        min_effect.append((key, float(fraction)))
    capacity = None
    if "capacity" in top:
        raw = _check("capacity.", top.pop("capacity"), _CAPACITY_KEYS)
        slo = []
        for key, condition in raw.pop("slo", {}).items():
            if not isinstance(condition, str):
                raise _FieldError(f"capacity.slo.{key}", f"must be a string like \"< 400\", got {condition!r}")
            try:
                slo.append(parse_threshold(key, condition))
            except ValueError as exc:
                raise _FieldError(f"capacity.slo.{key}", str(exc)) from None
            if key not in CAPACITY_SLO_KEYS:
                raise _FieldError(f"capacity.slo.{key}", "cannot be judged per step: the server's and the load "
                                  "generator's own figures are not participants' quality")
        capacity = _build("capacity", CapacitySettings, dict(raw, slo=tuple(slo)))
    if "systems" in top:
        if not all(isinstance(x, str) for x in top["systems"]):
            raise _FieldError("systems", "must be a list of strings such as [\"p2p\", \"reference\"]")
        top["systems"] = tuple(top["systems"])
    browser_raw = _check("browser.", top.pop("browser", {}), _BROWSER_KEYS)
    if "ice_servers" in browser_raw:
        if not all(isinstance(x, str) for x in browser_raw["ice_servers"]):
            raise _FieldError("browser.ice_servers", "must be a list of strings")
        browser_raw["ice_servers"] = tuple(browser_raw["ice_servers"])
    browser = _build("browser", BrowserSettings, browser_raw)
    if "timeline" in top:
        try:
            top["timeline"] = parse_timeline(top["timeline"])
        except FaultError as exc:
            raise _FieldError(exc.field, str(exc)) from None
    if "name" not in top:
        raise _FieldError("name", "is required")
    if isinstance(top["name"], str) and len(top["name"].encode("utf-8", "surrogatepass")) > MAX_NAME:
        # Checked here, not in Scenario: the harness itself suffixes names (crosscheck's "-crosscheck-floor").
        raise _FieldError("name", f"must be at most {MAX_NAME} bytes long (it names report folders)")
    fields_ = dict(top, groups=tuple(groups), video=video, audio=audio, screen=screen, thresholds=tuple(thresholds),
                   min_effect=tuple(min_effect), browser=browser, capacity=capacity, source=source)
    try:
        return Scenario(**fields_)
    except ValueError as exc:
        raise _FieldError("scenario", str(exc)) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read scenario: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        # ValueError: TOMLDecodeError and UnicodeDecodeError, and an integer longer than Python converts
        # (4300 digits); RecursionError: arrays or inline tables nested thousands deep.
        raise ScenarioError(f"{p}: not valid TOML: {str(exc) or type(exc).__name__}") from None
    return parse_scenario(data, source=str(p))


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """Rebuild a scenario from :meth:`Scenario.to_dict` output (how processes hand it to each other)."""
    d = dict(data)
    d.pop("source", None)
    d["media"] = {"video": d.pop("video", {}), "audio": d.pop("audio", {})}
    if "screen" in d:
        d["media"]["screen"] = d.pop("screen")
    return parse_scenario(d, source=str(data.get("source", "<memory>")))
