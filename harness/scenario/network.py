"""Network profiles: what a participant group's access link does to its packets, per direction, over time.

A profile has two :class:`Shape` s — ``up`` (from the group's participants into the network) and ``down``
(from the network to them) — and an optional timeline of :class:`Step` s that change them during a run
("at 30 s the downlink drops to 500 kbit/s for 20 s"). Each shape combines, in the order a packet meets
them:

1. loss: random (``loss_pct``, each packet independently) and/or bursty (``burst``, a Gilbert–Elliott
   two-state model);
2. a rate limit (``rate_kbps``, a token bucket) with a bounded queue (``queue_ms``: a packet that would wait
   longer than this behind the others is dropped, like a router's tail drop);
3. a one-way delay (``delay_ms``) with jitter (``jitter_ms``: each packet's delay is drawn uniformly from
   ``delay ± jitter``, as ``tc netem delay D J`` does; packets may overtake each other, as with netem).

In a scenario a group's ``network`` is a preset name (``"3g"``: ``scenarios/networks/3g.toml``) or a table::

    [groups.network]
    preset = "good-wifi"         # optional starting point
    delay_ms = 30                # keys at this level set both directions
    down = { rate_kbps = 2000 }  # keys in up / down set one direction
    [[groups.network.timeline]]
    at_s = 30                    # seconds from the start of the run
    duration_s = 20              # optional: without it the change lasts to the end
    down = { rate_kbps = 500 }
    [[groups.network.timeline]]
    at_s = 60
    outage_s = 5                 # an outage: every packet dropped, both directions, for 5 s

An outage is a step of its own (``outage_s`` instead of ``duration_s`` and changes): the report measures how
the participants recover from it (``harness.analysis.outages``).

This module is standard library only: the wire process (:mod:`harness.testbed.wire`) imports it.
Errors are :class:`ProfileError` s carrying the field path inside the network table, so that the scenario
loader can name the file and the full field in one line.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

__all__ = [
    "DIRECTIONS",
    "PRESET_DIR",
    "BurstLoss",
    "NetworkProfile",
    "ProfileError",
    "Shape",
    "Step",
    "load_preset",
    "outages",
    "parse_profile",
    "preset_names",
]

DIRECTIONS = ("up", "down")
PRESET_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "networks"
"""Where the shipped presets live (``scenarios/networks/<name>.toml`` of the source tree)."""

MAX_DELAY_MS = 10_000.0
MAX_RATE_KBPS = 10_000_000.0
MAX_QUEUE_MS = 10_000.0
DEFAULT_QUEUE_MS = 100.0


class ProfileError(ValueError):
    """A network table that cannot be used; ``field`` is the dotted path inside it (may be empty)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True, slots=True)
class BurstLoss:
    """Gilbert–Elliott loss: a Good and a Bad state, switching per packet.

    ``p_pct``: chance (per packet, %) of going from Good to Bad; ``r_pct``: from Bad back to Good.
    ``loss_bad_pct`` (1 − h) and ``loss_good_pct`` (1 − k): loss in each state. The names and meaning follow
    ``tc netem loss gemodel p r 1-h 1-k``. The mean burst lasts 100 / ``r_pct`` packets.
    """

    p_pct: float
    r_pct: float
    loss_bad_pct: float = 100.0
    loss_good_pct: float = 0.0

    def __post_init__(self) -> None:
        for name in ("p_pct", "loss_bad_pct", "loss_good_pct"):
            if not 0 <= getattr(self, name) <= 100:
                raise ProfileError(name, f"must be a percentage between 0 and 100, got {getattr(self, name)}")
        if not 0 < self.r_pct <= 100:
            raise ProfileError("r_pct", f"must be > 0 and <= 100 (else a burst never ends), got {self.r_pct}")

    @property
    def mean_loss_pct(self) -> float:
        """Long-run share of packets lost (%): the states' loss weighted by their stationary shares."""
        bad = self.p_pct / (self.p_pct + self.r_pct)
        return bad * self.loss_bad_pct + (1 - bad) * self.loss_good_pct


@dataclass(frozen=True, slots=True)
class Shape:
    """What one direction of a link does to packets (see the module docstring for the order)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    burst: BurstLoss | None = None
    rate_kbps: float | None = None
    queue_ms: float = DEFAULT_QUEUE_MS

    def __post_init__(self) -> None:
        if not 0 <= self.delay_ms <= MAX_DELAY_MS:
            raise ProfileError("delay_ms", f"must be between 0 and {MAX_DELAY_MS:g} ms, got {self.delay_ms}")
        if not 0 <= self.jitter_ms <= self.delay_ms:
            # Keeps the mean delay equal to delay_ms: a jitter wider than the delay would be cut at zero.
            raise ProfileError("jitter_ms", f"must be between 0 and delay_ms ({self.delay_ms:g}), "
                               f"got {self.jitter_ms}")
        if not 0 <= self.loss_pct <= 100:
            raise ProfileError("loss_pct", f"must be a percentage between 0 and 100, got {self.loss_pct}")
        if self.rate_kbps is not None and not 8 <= self.rate_kbps <= MAX_RATE_KBPS:
            raise ProfileError("rate_kbps", f"must be between 8 and {MAX_RATE_KBPS:g} kbit/s, got {self.rate_kbps}")
        if not 1 <= self.queue_ms <= MAX_QUEUE_MS:
            raise ProfileError("queue_ms", f"must be between 1 and {MAX_QUEUE_MS:g} ms, got {self.queue_ms}")

    @property
    def clean(self) -> bool:
        """True when this direction changes nothing (no delay, loss or rate limit)."""
        return (self.delay_ms == 0 and self.loss_pct == 0 and self.burst is None and self.rate_kbps is None)

    def to_dict(self) -> dict[str, Any]:
        """Plain data; parse it back with :func:`shape_from_dict`. Absent limits are left out."""
        data = asdict(self)
        for key in ("burst", "rate_kbps"):
            if data[key] is None:
                del data[key]
        return data

    def describe(self) -> str:
        """A short human summary, e.g. ``50±10 ms, 1% loss, 500 kbit/s (queue 100 ms)``."""
        parts = []
        if self.delay_ms:
            parts.append(f"{self.delay_ms:g}±{self.jitter_ms:g} ms" if self.jitter_ms else f"{self.delay_ms:g} ms")
        if self.loss_pct:
            parts.append(f"{self.loss_pct:g}% loss")
        if self.burst is not None:
            parts.append(f"bursty loss (mean {self.burst.mean_loss_pct:.2g}%)")
        if self.rate_kbps is not None:
            parts.append(f"{self.rate_kbps:g} kbit/s (queue {self.queue_ms:g} ms)")
        return ", ".join(parts) or "clean"


@dataclass(frozen=True, slots=True)
class Step:
    """One change of a timeline: from ``at_s`` (for ``duration_s``, or to the end) these fields apply."""

    at_s: float
    duration_s: float | None = None
    up: tuple[tuple[str, Any], ...] = ()
    down: tuple[tuple[str, Any], ...] = ()
    outage: bool = False
    """An outage (``outage_s``): every packet dropped both ways for ``duration_s``; recovery is measured."""

    def __post_init__(self) -> None:
        if not 0 <= self.at_s <= 7 * 24 * 3600:
            raise ProfileError("at_s", f"must be between 0 and 604800 s from the start of the run, got {self.at_s}")
        if self.duration_s is not None and not 0 < self.duration_s <= 7 * 24 * 3600:
            raise ProfileError("duration_s", f"must be > 0 and <= 604800 s, got {self.duration_s}")
        if not self.up and not self.down:
            raise ProfileError("", "a timeline step must change something (up, down or a both-way key)")

    @property
    def end_s(self) -> float:
        """When the change ends (infinity when it lasts to the end of the run)."""
        return math.inf if self.duration_s is None else self.at_s + self.duration_s

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as a timeline entry of a network table."""
        data: dict[str, Any] = {"at_s": self.at_s}
        if self.outage:
            data["outage_s"] = self.duration_s
            return data
        if self.duration_s is not None:
            data["duration_s"] = self.duration_s
        for direction in DIRECTIONS:
            changes = dict(getattr(self, direction))
            if changes:
                data[direction] = {k: (asdict(v) if isinstance(v, BurstLoss) else v) for k, v in changes.items()}
        return data


@dataclass(frozen=True, slots=True)
class NetworkProfile:
    """A group's access link: both directions and how they change over the run."""

    name: str = "custom"
    up: Shape = field(default_factory=Shape)
    down: Shape = field(default_factory=Shape)
    timeline: tuple[Step, ...] = ()
    description: str = ""

    def at(self, t: float) -> tuple[Shape, Shape]:
        """The (up, down) shapes in force ``t`` seconds after the start of the run."""
        up, down = self.up, self.down
        for step in self.timeline:
            if step.at_s <= t < step.end_s:
                up = _apply(up, step.up)
                down = _apply(down, step.down)
        return up, down

    def changes(self) -> list[float]:
        """Times (s from the start) at which the shapes change, 0 first; the timeline's starts and ends."""
        times = {0.0}
        for step in self.timeline:
            times.add(step.at_s)
            if math.isfinite(step.end_s):
                times.add(step.end_s)
        return sorted(times)

    @property
    def clean(self) -> bool:
        """True when the link never changes anything (no shaping needed at all)."""
        return all(up.clean and down.clean for up, down in (self.at(t) for t in self.changes()))

    def to_dict(self) -> dict[str, Any]:
        """The resolved profile as plain data (recorded in manifests; parsed back by :func:`parse_profile`)."""
        data: dict[str, Any] = {"name": self.name, "up": self.up.to_dict(), "down": self.down.to_dict()}
        if self.timeline:
            data["timeline"] = [step.to_dict() for step in self.timeline]
        if self.description:
            data["description"] = self.description
        return data


# --- parsing ------------------------------------------------------------------------------------------------

_SHAPE_KEYS: dict[str, type] = {"delay_ms": float, "jitter_ms": float, "loss_pct": float, "burst": dict,
                                "rate_kbps": float, "queue_ms": float}
_BURST_KEYS: dict[str, type] = {"p_pct": float, "r_pct": float, "loss_bad_pct": float, "loss_good_pct": float}
_TYPE_NAMES = {float: "a number", dict: "a table", str: "a string", list: "a list"}


def _value(path: str, value: Any, want: type) -> Any:
    if want is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ProfileError(path, f"must be a number, got {value!r}")
        return float(value)
    if not isinstance(value, want):
        raise ProfileError(path, f"must be {_TYPE_NAMES[want]}, got {type(value).__name__}")
    return value


def _changes(path: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a table of shape keys; returns the changes it makes (burst as :class:`BurstLoss`)."""
    out: dict[str, Any] = {}
    for key, raw in table.items():
        where = f"{path}{key}"
        if key not in _SHAPE_KEYS:
            raise ProfileError(where, f"unknown key (known: {', '.join(sorted(_SHAPE_KEYS))})")
        value = _value(where, raw, _SHAPE_KEYS[key])
        if key == "burst":
            burst = {}
            for bkey, braw in value.items():
                if bkey not in _BURST_KEYS:
                    raise ProfileError(f"{where}.{bkey}", f"unknown key (known: {', '.join(sorted(_BURST_KEYS))})")
                burst[bkey] = _value(f"{where}.{bkey}", braw, float)
            if "p_pct" not in burst or "r_pct" not in burst:
                raise ProfileError(where, "needs p_pct and r_pct (Gilbert–Elliott transition chances, %)")
            try:
                value = BurstLoss(**burst)
            except ProfileError as exc:
                raise ProfileError(f"{where}.{exc.field}", str(exc)) from None
        out[key] = value
    return out


def _apply(shape: Shape, changes: Mapping[str, Any] | Sequence[tuple[str, Any]]) -> Shape:
    items = dict(changes)
    if not items:
        return shape
    return replace(shape, **items)


def _split(path: str, table: Mapping[str, Any], allowed: set[str]) -> tuple[dict[str, Any], ...]:
    """(both-way, up-only, down-only) changes of a table holding both-way keys and ``up`` / ``down`` tables."""
    both: dict[str, Any] = {}
    per: dict[str, dict[str, Any]] = {"up": {}, "down": {}}
    for key, raw in table.items():
        if key in allowed:
            continue
        if key in DIRECTIONS:
            per[key] = _changes(f"{path}{key}.", _value(f"{path}{key}", raw, dict))
        elif key in _SHAPE_KEYS:
            both.update(_changes(path, {key: raw}))
        else:
            known = ", ".join(sorted({*allowed, *DIRECTIONS, *_SHAPE_KEYS}))
            raise ProfileError(f"{path}{key}", f"unknown key (known: {known})")
    return both, per["up"], per["down"]


def _shape(path: str, base: Shape, changes: Mapping[str, Any]) -> Shape:
    try:
        return _apply(base, changes)
    except ProfileError as exc:
        raise ProfileError(f"{path}{exc.field}", str(exc)) from None


def preset_names(search: Sequence[Path] = (PRESET_DIR,)) -> list[str]:
    """Names of the presets found in ``search`` (first directory wins)."""
    names: set[str] = set()
    for directory in search:
        names.update(p.stem for p in Path(directory).glob("*.toml"))
    return sorted(names)


def load_preset(name: str, search: Sequence[Path] = (PRESET_DIR,)) -> NetworkProfile:
    """The preset ``name`` from the first directory of ``search`` that has ``<name>.toml``."""
    if not name or "/" in name or name.startswith("."):
        raise ProfileError("preset", f"{name!r} is not a preset name")
    for directory in search:
        path = Path(directory) / f"{name}.toml"
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad TOML, UTF-8 or a huge int
                raise ProfileError("preset", f"preset {name!r} ({path}) is unreadable: {exc}") from None
            if "preset" in data or "timeline" in data:
                raise ProfileError("preset", f"preset {name!r} ({path}) may not name a preset or hold a timeline")
            try:
                profile = parse_profile(data, search=())
            except ProfileError as exc:
                raise ProfileError("preset", f"preset {name!r} ({path}): {exc.field}: {exc}") from None
            return replace(profile, name=name)
    known = ", ".join(preset_names(search)) or "none"
    raise ProfileError("preset", f"no preset {name!r} (known: {known})")


def parse_profile(data: str | Mapping[str, Any], search: Sequence[Path] = (PRESET_DIR,)) -> NetworkProfile:
    """A profile from a preset name or a network table (see the module docstring); :class:`ProfileError`.

    ``name`` in a table is informational (the resolved form of :meth:`NetworkProfile.to_dict` carries it);
    ``preset`` loads a preset from ``search`` as the starting point.
    """
    if isinstance(data, str):
        return load_preset(data, search)
    if not isinstance(data, Mapping):
        raise ProfileError("", f"must be a preset name or a table, got {type(data).__name__}")
    base = NetworkProfile()
    if "preset" in data:
        base = load_preset(_value("preset", data["preset"], str), search)
    both, up_only, down_only = _split("", data, {"preset", "name", "description", "timeline"})
    changed = bool(both or up_only or down_only)
    # A preset with changes is no longer the preset: its name says so and its description is dropped.
    default_name = "custom" if "preset" not in data else f"{base.name} (modified)" if changed else base.name
    name = data.get("name", default_name)
    description = data.get("description", "" if changed else base.description)
    _value("name", name, str)
    _value("description", description, str)
    up = _shape("up.", _shape("", base.up, both), up_only)
    down = _shape("down.", _shape("", base.down, both), down_only)
    steps = []
    for i, raw in enumerate(_value("timeline", data.get("timeline", []), list)):
        where = f"timeline[{i}]"
        if not isinstance(raw, Mapping):
            raise ProfileError(where, "must be a table ([[groups.network.timeline]])")
        if "at_s" not in raw:
            raise ProfileError(where, "needs at_s (seconds from the start of the run)")
        at_s = _value(f"{where}.at_s", raw["at_s"], float)
        if "outage_s" in raw:
            steps.append(_outage(where, raw, at_s))
            continue
        duration = raw.get("duration_s")
        if duration is not None:
            duration = _value(f"{where}.duration_s", duration, float)
        step_both, step_up, step_down = _split(f"{where}.", raw, {"at_s", "duration_s"})
        # Each change must make a valid shape on its own (e.g. a jitter within the delay it is used with).
        _shape(f"{where}.", up, step_both)
        _shape(f"{where}.", down, step_both)
        _shape(f"{where}.up.", up, {**step_both, **step_up})
        _shape(f"{where}.down.", down, {**step_both, **step_down})
        try:
            step = Step(at_s, duration, tuple({**step_both, **step_up}.items()),
                        tuple({**step_both, **step_down}.items()))
        except ProfileError as exc:
            raise ProfileError(f"{where}.{exc.field}".rstrip("."), str(exc)) from None
        steps.append(step)
    profile = NetworkProfile(name=name, up=up, down=down, timeline=tuple(steps), description=description)
    for i, step in enumerate(profile.timeline):
        try:  # overlapping steps combine; the combination must be valid too
            profile.at(step.at_s)
        except ProfileError as exc:
            raise ProfileError(f"timeline[{i}].{exc.field}", f"{exc} (with the steps it overlaps)") from None
    return profile


OUTAGE = (("loss_pct", 100.0),)
"""What an outage does to each direction of the link."""


def _outage(where: str, raw: Mapping[str, Any], at_s: float) -> Step:
    """An outage step: ``at_s`` and ``outage_s`` only (what it does is fixed: everything dropped both ways)."""
    others = sorted(set(raw) - {"at_s", "outage_s"})
    if others:
        raise ProfileError(f"{where}.{others[0]}", "an outage step has at_s and outage_s only "
                           "(every packet is dropped both ways); put other changes in a step of their own")
    length = _value(f"{where}.outage_s", raw["outage_s"], float)
    if not 0 < length <= 3600:
        raise ProfileError(f"{where}.outage_s", f"must be > 0 and <= 3600 s, got {length:g}")
    try:
        return Step(at_s, length, OUTAGE, OUTAGE, outage=True)
    except ProfileError as exc:
        raise ProfileError(f"{where}.{exc.field}".rstrip("."), str(exc)) from None


def outages(profile: NetworkProfile) -> list[tuple[float, float]]:
    """The (start, end) seconds of every outage of ``profile``'s timeline, in order."""
    return sorted((step.at_s, step.end_s) for step in profile.timeline if step.outage)


def shape_from_dict(data: Mapping[str, Any]) -> Shape:
    """A :class:`Shape` from :meth:`Shape.to_dict` output (how the wire process receives shapes)."""
    return _apply(Shape(), _changes("", data))
