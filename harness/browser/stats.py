"""What a browser page measured, turned into the rows of ``docs/results.md``.

The page (``media.js``) hands over raw material once a second: WebRTC ``getStats()`` entries per connection
(cumulative counters), every received video frame with its stamp, and audio pulse onsets. :class:`PageRows`
keeps the previous counters, so that each ``streams`` row covers one interval as native rows do, and uses the
same freeze definition as native participants (``harness.host.counters.VideoCounters``).

Units: Chromium reports ``jitter`` and ``roundTripTime`` in seconds and ``fractionLost`` as 0..1 (aiortc's
is RFC 3550's 0..255); both become the table's ms and percent here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.host.counters import VideoCounters

Row = dict[str, Any]
Emit = Callable[[str, Row], None]
Directory = Callable[[int], str | None]
"""Name of the participant whose video carries a stream id, when known on this media host."""


UNKNOWN = "unknown"
"""The sender's name of a row whose sender neither a stream id nor the connection's label tells."""

PULSE_WAIT_BATCHES = 5
"""Batches (a second each) an audio pulse waits for its sender's name: for the page to describe its track, and
for the stamp on the video of the same stream to be read (on an SFU's one connection, the only name it has)."""

JITTER_BUFFER_FIGURES = (
    ("jitterBufferDelay", "jitter_buffer_ms"),
    ("jitterBufferMinimumDelay", "jitter_buffer_min_ms"),
    ("jitterBufferTargetDelay", "jitter_buffer_target_ms"),
)
"""Chromium's jitter-buffer totals and the ``streams`` columns of their means per emitted sample, in ms.

The buffer held samples for the delay; it aimed at the target, which is lip sync and playout-delay hints on top
of the minimum, what the stream's arrivals alone ask for (NetEq's target, or the video jitter estimator's,
without limits). So the target less the minimum is what lip sync adds.
"""


@dataclass
class _Counter:
    packets: int = 0
    lost: int = 0
    bytes: int = 0
    stamp_ms: float | None = None
    frames_dropped: int = 0
    freezes: int = 0
    jb_count: int = 0
    jb_totals: dict[str, float] = field(default_factory=dict)  # the last total of each of JITTER_BUFFER_FIGURES


def _num(entry: dict[str, Any], key: str) -> float | None:
    value = entry.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(entry: dict[str, Any], key: str) -> int:
    value = _num(entry, key)
    return int(value) if value is not None else 0


class PageRows:
    """Turns one participant's page batches into ``frames``, ``audio``, ``streams`` and ``events`` rows."""

    def __init__(self, participant: str, emit: Emit, directory: Directory) -> None:
        self.participant = participant
        self._emit = emit
        self._directory = directory
        self._counters: dict[tuple[str, str, int], _Counter] = {}
        self._video: dict[str, VideoCounters] = {}
        self._track_sid: dict[str, int] = {}
        self._track_pc: dict[str, str] = {}
        self._labels: dict[str, str] = {}
        self._routes: dict[str, dict[str, Any]] = {}  # pc -> its selected candidate pair, last reported
        # Pulses of a track the page has not described yet (waits, batches waited so far): see _pulses.
        self._unnamed_pulses: list[tuple[dict[str, Any], int]] = []
        self.first_frame_ts: float | None = None
        self.produced = 0
        self.skipped = 0
        self._lag_ms: float | None = None  # the page's worst lateness since take_lag_ms(), None before a batch

    def take_lag_ms(self) -> float | None:
        """How late the page's main thread ran at worst (ms) since the last call; None if no batch said."""
        lag, self._lag_ms = self._lag_ms, None
        return lag

    # -- names ---------------------------------------------------------------------------------------------
    def name_of(self, sid: int | None, pc: str | None = None) -> str:
        """The publisher behind a stamp's stream id: known locally, named by the page, or ``stream-<id>``."""
        if sid is not None:
            name = self._directory(sid)
            if name:
                return name
        if pc is not None and pc in self._labels:
            return self._labels[pc]
        if sid is not None:
            return f"stream-{sid}"
        return UNKNOWN

    # -- a batch -------------------------------------------------------------------------------------------
    def take(self, batch: dict[str, Any]) -> None:
        """Process one ``__confbench.collect()`` result."""
        now = float(batch.get("now") or 0.0)
        source = batch.get("source") or {}
        self.produced, self.skipped = _int(source, "produced"), _int(source, "skipped")
        lag = batch.get("lag_ms")
        if isinstance(lag, int | float) and math.isfinite(lag):
            self._lag_ms = max(float(lag), self._lag_ms or 0.0)
        stats = batch.get("stats") or []
        for pc in stats:  # names first: frames and pulses of this batch may come from new connections
            if pc.get("label"):
                self._labels[str(pc["pc"])] = str(pc["label"])
            for entry in pc.get("inbound") or []:
                track = entry.get("track_key") or entry.get("trackIdentifier")
                if track:
                    self._track_pc[str(track)] = str(pc["pc"])
                    if isinstance(entry.get("sid"), int):
                        self._track_sid[str(track)] = int(entry["sid"])
        for frame in batch.get("frames") or []:
            self._frame(frame)
        self._pulses([(pulse, 0) for pulse in batch.get("audio") or []])
        for ev in batch.get("events") or []:
            self._emit("events", {"ts": float(ev["ts"]), "kind": str(ev["kind"]), "participant": self.participant,
                                  "detail": str(ev.get("detail", ""))})
        for pc in stats:
            self._connection(pc, now)

    def flush(self) -> None:
        """Emit the pulses still waiting for their track's description, named as well as they can be."""
        self._pulses([], wait=False)

    def _pulses(self, pulses: list[tuple[dict[str, Any], int]], wait: bool = True) -> None:
        # The page reports a pulse as soon as it hears it, and a new connection's stats (which name the track's
        # sender) once a second: a first pulse can come a batch before them. Through an SFU the connection has no
        # sender's name either: the audio is named by the stamp on its stream's video, and a participant's first
        # pulse can be heard before its first video frame is read. Held for up to PULSE_WAIT_BATCHES batches,
        # such a pulse is named like the others instead of "unknown".
        pending, self._unnamed_pulses = self._unnamed_pulses, []
        for pulse, waited in [*[(p, w + 1) for p, w in pending], *pulses]:
            track = str(pulse.get("track"))
            sender = self.name_of(self._track_sid.get(track), self._track_pc.get(track))
            if wait and waited < PULSE_WAIT_BATCHES and sender == UNKNOWN:
                self._unnamed_pulses.append((pulse, waited))
                continue
            self._emit("audio", {"ts": float(pulse["ts"]), "receiver": self.participant, "sender": sender,
                                 "latency_ms": float(pulse["latency_ms"])})

    def _frame(self, frame: dict[str, Any]) -> None:
        track = str(frame.get("track"))
        ts = float(frame["ts"])
        counters = self._video.setdefault(track, VideoCounters())
        if counters.taken_at is None:
            counters.taken_at = ts
        if self.first_frame_ts is None or ts < self.first_frame_ts:
            self.first_frame_ts = ts
        gap_ms = counters.arrived(ts)
        sid = frame.get("sid")
        if not isinstance(sid, int):
            counters.unreadable += 1
            return
        self._track_sid[track] = sid
        capture = float(frame["cap"])
        self._emit("frames", {
            "ts": ts, "receiver": self.participant, "sender": self.name_of(sid, self._track_pc.get(track)),
            "stream_id": sid, "frame_no": int(frame["no"]), "capture_ts": capture,
            "latency_ms": (ts - capture) * 1000, "gap_ms": gap_ms,
            "width": int(frame.get("w") or 0), "height": int(frame.get("h") or 0),
        })

    def _connection(self, pc: dict[str, Any], now: float) -> None:
        pc_id = str(pc["pc"])
        route = pc.get("route")
        if isinstance(route, dict) and route.get("local") and self._routes.get(pc_id) != route:
            # Once per connection and whenever ICE moves it: where this browser's media really flows.
            self._routes[pc_id] = dict(route)
            self._emit("events", {"ts": now, "kind": "ice_route", "participant": self.participant,
                                  "detail": f"{route.get('local')} -> {route.get('remote')} "
                                            f"({route.get('protocol') or '?'}, {self._labels.get(pc_id) or pc_id})"})
        others = pc.get("others") or []
        remote_in = {str(e.get("localId")): e for e in others if e.get("type") == "remote-inbound-rtp"}
        for entry in pc.get("inbound") or []:
            self._inbound(pc_id, entry, now)
        sids = [s for s in pc.get("remote_sids") or [] if isinstance(s, int)]
        out_peer = self._labels.get(pc_id) or (self.name_of(sids[0]) if len(sids) == 1 else "server")
        for entry in others:
            if entry.get("type") == "outbound-rtp":
                self._outbound(pc_id, entry, remote_in.get(str(entry.get("id"))), out_peer, now)

    def _delta(self, key: tuple[str, str, int], entry: dict[str, Any], packets: str, bytes_: str
               ) -> tuple[_Counter, int, int, float | None]:
        c = self._counters.setdefault(key, _Counter())
        total_packets, total_bytes = _int(entry, packets), _int(entry, bytes_)
        d_packets = max(total_packets - c.packets, 0)
        d_bytes = max(total_bytes - c.bytes, 0)
        stamp_ms = _num(entry, "timestamp")
        bitrate = None
        if stamp_ms is not None and c.stamp_ms is not None and stamp_ms > c.stamp_ms:
            bitrate = d_bytes * 8 / ((stamp_ms - c.stamp_ms) / 1000) / 1000
        c.packets, c.bytes, c.stamp_ms = total_packets, total_bytes, stamp_ms
        return c, d_packets, d_bytes, bitrate

    def _inbound(self, pc_id: str, entry: dict[str, Any], now: float) -> None:
        kind = str(entry.get("kind") or "video")
        ssrc = _int(entry, "ssrc")
        c, packets, _, bitrate = self._delta((pc_id, "in", ssrc), entry, "packetsReceived", "bytesReceived")
        total_lost = _int(entry, "packetsLost")
        lost = max(total_lost - c.lost, 0)
        c.lost = max(total_lost, c.lost)
        jitter = _num(entry, "jitter")
        track = str(entry.get("track_key") or entry.get("trackIdentifier"))
        sid = entry.get("sid") if isinstance(entry.get("sid"), int) else None
        row: Row = {
            "ts": now, "participant": self.participant, "peer": self.name_of(sid, pc_id), "direction": "in",
            "kind": kind, "ssrc": ssrc, "packets": packets, "packets_lost": lost,
            "loss_pct": 100 * lost / (packets + lost) if packets + lost else None,
            "jitter_ms": jitter * 1000 if jitter is not None else None, "bitrate_kbps": bitrate,
            "freezes": 0, "freeze_ms": 0.0, "frames_unreadable": 0,
        }
        if kind == "video":
            counters = self._video.get(track)
            if counters is not None:
                row.update(counters.take(now))
            else:
                row["fps"] = 0.0 if packets == 0 else None
            dropped = _int(entry, "framesDropped")
            row["frames_dropped"] = max(dropped - c.frames_dropped, 0)
            c.frames_dropped = dropped
            if "freezeCount" in entry:
                freezes = _int(entry, "freezeCount")
                row["reported_freezes"] = max(freezes - c.freezes, 0)
                c.freezes = freezes
            row["decoded_fps"] = _num(entry, "framesPerSecond")
        # Each figure is a total over the samples the buffer emitted: the interval's mean is the total's change
        # over the emitted count's change.
        count = _int(entry, "jitterBufferEmittedCount")
        emitted = count - c.jb_count
        for stat, column in JITTER_BUFFER_FIGURES:
            total = _num(entry, stat)
            if total is None:
                continue
            if emitted > 0:
                row[column] = (total - c.jb_totals.get(stat, 0.0)) / emitted * 1000
            c.jb_totals[stat] = total
        if "jitterBufferEmittedCount" in entry:
            c.jb_count = count
        self._emit("streams", row)

    def _outbound(self, pc_id: str, entry: dict[str, Any], remote: dict[str, Any] | None, peer: str,
                  now: float) -> None:
        kind = str(entry.get("kind") or "video")
        ssrc = _int(entry, "ssrc")
        _, packets, _, bitrate = self._delta((pc_id, "out", ssrc), entry, "packetsSent", "bytesSent")
        rtt = _num(remote, "roundTripTime") if remote else None
        fraction = _num(remote, "fractionLost") if remote else None
        jitter = _num(remote, "jitter") if remote else None
        row: Row = {
            "ts": now, "participant": self.participant, "peer": peer, "direction": "out", "kind": kind,
            "ssrc": ssrc, "packets": packets, "packets_lost": 0,
            "loss_pct": 100 * fraction if fraction is not None else None,
            "jitter_ms": jitter * 1000 if jitter is not None else None,
            "rtt_ms": rtt * 1000 if rtt is not None else None, "bitrate_kbps": bitrate,
            "freezes": 0, "freeze_ms": 0.0, "frames_unreadable": 0,
        }
        reason = entry.get("qualityLimitationReason")
        if kind == "video" and isinstance(reason, str):
            row["quality_limitation"] = reason
        self._emit("streams", row)
