"""Counters and frame assembly of an undecoded stream, one slot per sequence number (no object per packet).

:class:`LeanStatistics` keeps RFC 3550 counters as aiortc's ``StreamStatistics`` does; :class:`LeanFrames`
assembles complete video frames by the rules of ``harness.rtc.jitter.VideoPlayoutBuffer`` and says which packets
to ask again for. Both are fed by ``harness.rtc.lean_receiver``, which reads packets straight off the wire.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness.rtc.jitter import FRAME_KEY, FRAME_STARTS

__all__ = ["FLAG_MARKER", "LeanFrames", "LeanStatistics"]

MIN_WAIT_S = 0.2
REPAIR_WAITS = 3.0
PLI_INTERVAL_S = 0.3
NACK_RETRIES = 10
MIN_NACK_INTERVAL_S = 0.02
INITIAL_REPAIR_S = 0.05
MAX_MISORDER = 100
CAPACITY = 512
"""Sequence numbers a video stream keeps track of (a frame with a gap waits ``wait_s``, far fewer packets)."""
MAX_NACK_LIST = 64
"""At most this many packets are asked for in one NACK (the oldest wait for the next one)."""
STALL_S = 1.0
"""A stream that has brought packets but no complete frame for this long asks for a key frame."""

# Flags per sequence-number slot (a bytearray: no object per packet).
_PRESENT, _MARKER, _STARTS, _KEY = 1, 2, FRAME_STARTS, FRAME_KEY
FLAG_MARKER = _MARKER
"""The flag :meth:`LeanFrames.add` takes for a packet with the RTP marker bit (the last of its frame)."""


def _gt(a: int, b: int) -> bool:
    """16-bit sequence number ``a`` is after ``b`` (RFC 1982)."""
    return a != b and ((a - b) & 0xFFFF) < 0x8000


class LeanStatistics:
    """RFC 3550 receiver counters of one SSRC, computed as aiortc's ``StreamStatistics`` computes them (same
    properties, read by its receiver reports and ``getStats``), fed with header fields instead of a packet."""

    __slots__ = ("base_seq", "max_seq", "cycles", "packets_received", "_clockrate", "_jitter_q4",
                 "_last_arrival", "_last_timestamp", "_expected_prior", "_received_prior")

    def __init__(self, clockrate: int) -> None:
        self.base_seq: int | None = None
        self.max_seq: int | None = None
        self.cycles = 0
        self.packets_received = 0
        self._clockrate = clockrate
        self._jitter_q4 = 0
        self._last_arrival = 0
        self._last_timestamp: int | None = None
        self._expected_prior = 0
        self._received_prior = 0

    def add(self, seq: Any, timestamp: int | None = None, now: float | None = None) -> None:
        """Count one packet arrived at ``now`` (wall clock, as aiortc); or an ``RtpPacket`` alone, as aiortc
        counts: packets aiortc queued before the lean path took their stream over reach it later."""
        if timestamp is None:
            seq, timestamp, now = seq.sequence_number, seq.timestamp, time.time()
        assert now is not None
        max_seq = self.max_seq
        self.packets_received += 1
        if self.base_seq is None:
            self.base_seq = seq
        if max_seq is None or (seq != max_seq and ((seq - max_seq) & 0xFFFF) < 0x8000):
            arrival = int(now * self._clockrate)
            if max_seq is not None and seq < max_seq:
                self.cycles += 1 << 16
            self.max_seq = seq
            if timestamp != self._last_timestamp and self.packets_received > 1:
                assert self._last_timestamp is not None
                diff = abs((arrival - self._last_arrival) - (timestamp - self._last_timestamp))
                self._jitter_q4 += diff - ((self._jitter_q4 + 8) >> 4)
            self._last_arrival = arrival
            self._last_timestamp = timestamp

    @property
    def fraction_lost(self) -> int:
        expected = self.packets_expected
        expected_interval, self._expected_prior = expected - self._expected_prior, expected
        received_interval = self.packets_received - self._received_prior
        self._received_prior = self.packets_received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            return 0
        return (lost_interval << 8) // expected_interval

    @property
    def jitter(self) -> int:
        return self._jitter_q4 >> 4

    @property
    def packets_expected(self) -> int:
        if self.max_seq is None or self.base_seq is None:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def packets_lost(self) -> int:
        # RFC 3550's 24-bit signed field, as aiortc clamps it.
        return max(-0x800000, min(self.packets_expected - self.packets_received, 0x7FFFFF))


class LeanFrames:
    """Frame completion, drops and NACKs of one video stream, on sequence numbers, marker bits and timestamps:
    the rules of ``harness.rtc.jitter.VideoPlayoutBuffer`` and ``NackRetrier`` without packet objects."""

    def __init__(self, keyed: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.keyed = keyed
        self.frames = 0
        """Frames completed and decodable."""
        self.dropped = 0
        """Frames dropped incomplete or undecodable."""
        self.repaired = 0
        """Packets that arrived after being asked for."""
        self.unrepaired = 0
        """Packets given up on: lost after retransmission."""
        self.wait_s = MIN_WAIT_S
        self.repair_s = INITIAL_REPAIR_S
        self.last_frame_at = clock()
        self._clock = clock
        self._flags = bytearray(CAPACITY)
        self._ts = [0] * CAPACITY
        self._origin: int | None = None
        self._highest = 0
        self._missing: dict[int, list[float]] = {}  # seq -> [gap seen, last asked, times asked]
        self._need_key = True
        self._last_ts = -1
        self._ticked_highest = -1
        self._last_pli: float | None = None
        self._key_starts: list[int] = []  # key frames' first packets that came while a packet before was missing
        self.want_pli = False
        """Set when a key frame should be asked for (the caller sends the PLI and clears it)."""

    def add(self, seq: int, timestamp: int, flags: int) -> int:
        """One packet; returns how many frames it completed."""
        origin = self._origin
        if origin is None:
            origin = self._origin = self._highest = seq
        delta = (seq - origin) & 0xFFFF
        behind = (origin - seq) & 0xFFFF
        if behind < delta:
            if behind < MAX_MISORDER:
                return 0  # late: its frame was handed on or dropped already
            self._restart(seq)
        elif delta >= CAPACITY:
            self._restart(seq)
        slot = seq % CAPACITY
        if self._flags[slot] & _PRESENT:
            return 0  # a duplicate (two answers to one NACK)
        highest = self._highest
        next_in_order = seq == (highest + 1) & 0xFFFF
        if seq != highest and ((seq - highest) & 0xFFFF) < 0x8000:
            if (seq - highest) & 0xFFFF > 1:
                now = self._clock()
                gap = (highest + 1) & 0xFFFF
                while gap != seq:
                    self._missing[gap] = [now, 0.0, 0]
                    gap = (gap + 1) & 0xFFFF
            self._highest = seq
        elif seq in self._missing:
            first = self._missing.pop(seq)
            if first[2]:
                self.repaired += 1
                elapsed = self._clock() - first[0]
                if elapsed < 1.0:
                    self.repair_s += 0.125 * (elapsed - self.repair_s)
                self.wait_s = max(MIN_WAIT_S, REPAIR_WAITS * self.repair_s)
        self._flags[slot] = flags | _PRESENT
        self._ts[slot] = timestamp
        if self._missing and flags & _KEY and flags & _STARTS and self.keyed:
            self._key_starts.append(seq)
        if next_in_order and not flags & _MARKER and not self._missing:
            if timestamp == self._last_ts:
                return 0  # the middle of a frame, nothing missing: nothing can complete or drop
            if self._origin == seq and not self._need_key:
                self._last_ts = timestamp
                return 0  # a frame's first packet with nothing before it: the same, without the scan
        self._last_ts = timestamp
        done = self._drain()
        if self._need_key and self._last_pli is not None and self._clock() - self._last_pli >= PLI_INTERVAL_S:
            self._want_key()
        return done

    def nacks(self) -> list[int]:
        """Sequence numbers to ask for now (new gaps and repeats), oldest first, at most MAX_NACK_LIST."""
        if not self._missing:
            return []
        now = self._clock()
        interval = max(MIN_NACK_INTERVAL_S, 1.5 * self.repair_s)
        due = []
        for seq, state in self._missing.items():
            if state[2] < NACK_RETRIES and (not state[2] or now - state[1] >= interval):
                state[1], state[2] = now, state[2] + 1
                due.append(seq)
                if len(due) >= MAX_NACK_LIST:
                    break
        return due

    def _want_key(self) -> None:
        self._need_key = True
        now = self._clock()
        if self._last_pli is None or now - self._last_pli >= PLI_INTERVAL_S:
            self._last_pli = now
            self.want_pli = True

    def _restart(self, origin: int) -> None:
        self.unrepaired += len(self._missing)
        self._missing.clear()
        self._flags[:] = bytes(CAPACITY)
        self._key_starts.clear()
        self._origin = self._highest = origin
        self._want_key()

    def _drain(self) -> int:
        done = 0
        while True:
            origin, highest = self._origin, self._highest
            assert origin is not None
            if origin != highest and ((origin - highest) & 0xFFFF) < 0x8000:  # nothing held (_next_frame's test)
                return done
            outcome = self._next_frame()
            if outcome is None:
                return done
            if outcome == 2:  # frames before a complete key frame dropped: no key frame to ask for
                continue
            if outcome == 1:
                done += 1
            else:
                self.dropped += 1
                self._want_key()

    def _next_frame(self) -> int | None:
        """1: a frame handed on; 0: one dropped; 2: frames dropped up to a complete key frame; None: nothing
        to do yet."""
        origin = self._origin
        assert origin is not None
        highest = self._highest
        if origin != highest and ((origin - highest) & 0xFFFF) < 0x8000:
            return None
        span = ((highest - origin) & 0xFFFF) + 1
        flags_of, ts_of = self._flags, self._ts
        first_ts: int | None = None
        for count in range(min(span, CAPACITY)):
            seq = (origin + count) & 0xFFFF
            slot = seq % CAPACITY
            flags = flags_of[slot]
            if not flags & _PRESENT:
                state = self._missing.get(seq)
                if state is not None and self._clock() - state[0] < self.wait_s:
                    return 2 if self._key_starts and self._key_after_gap(count) else None
                self._skip_past_gap(count)
                return 0
            if first_ts is None:
                first_ts = ts_of[slot]
            elif ts_of[slot] != first_ts:
                return self._complete(count)
            if flags & _MARKER:
                return self._complete(count + 1)
        return None

    def _complete(self, count: int) -> int:
        assert self._origin is not None
        first = self._flags[self._origin % CAPACITY]
        self._forget(count)
        if self._need_key and self.keyed and not (first & _KEY and first & _STARTS):
            return 0
        self._need_key = False
        self.last_frame_at = self._clock()
        return 1

    def _key_after_gap(self, gap: int) -> bool:
        """``VideoPlayoutBuffer._key_after_gap``: drop everything before the first complete key frame after
        the gap at ``origin + gap``, if there is one."""
        origin = self._origin
        assert origin is not None
        self._key_starts = [s for s in self._key_starts if gap < (s - origin) & 0xFFFF < CAPACITY]
        span = ((self._highest - origin) & 0xFFFF) + 1
        for start in self._key_starts:
            offset = (start - origin) & 0xFFFF
            timestamp = self._ts[start % CAPACITY]
            for count in range(offset, span):
                slot = (origin + count) % CAPACITY
                flags = self._flags[slot]
                if not flags & _PRESENT:
                    break
                if self._ts[slot] != timestamp or flags & _MARKER:
                    skipped = {self._ts[(origin + i) % CAPACITY] for i in range(offset)
                               if self._flags[(origin + i) % CAPACITY] & _PRESENT}
                    self.dropped += max(len(skipped), 1)
                    self._forget(offset, gave_up=True)  # the starts noted before it go with the next filter
                    return True
        return False

    def _skip_past_gap(self, gap: int) -> None:
        assert self._origin is not None
        broken = {self._ts[(self._origin + i) % CAPACITY] for i in range(gap)
                  if self._flags[((self._origin + i) & 0xFFFF) % CAPACITY] & _PRESENT}
        self._forget(gap + 1, gave_up=True)
        end = (self._highest + 1) & 0xFFFF
        while self._origin != end:
            slot = self._origin % CAPACITY
            flags = self._flags[slot]
            if not flags & _PRESENT:
                return
            if flags & _STARTS and self._ts[slot] not in broken:
                return
            broken.add(self._ts[slot])
            self._forget(1)

    def _forget(self, count: int, gave_up: bool = False) -> None:
        origin = self._origin
        assert origin is not None
        for _ in range(count):
            if self._missing.pop(origin, None) is not None and gave_up:
                self.unrepaired += 1
            self._flags[origin % CAPACITY] = 0
            origin = (origin + 1) & 0xFFFF
        self._origin = origin

    def stalled(self, now: float) -> None:
        """Called on the tick: a stream whose packets still come but that completed no frame for STALL_S asks
        for a key frame (one whose packets stopped, a sender gone or muted, is not asked again and again)."""
        arriving, self._ticked_highest = self._highest != self._ticked_highest, self._highest
        if arriving and now - self.last_frame_at >= STALL_S and self._origin is not None:
            self._want_key()
