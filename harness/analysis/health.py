"""The load generator's health: when a figure says more about the instrument than about the system.

A run is marked ``invalid`` (and a capacity step is judged ``generator``) when the media hosts skipped frames,
their event loop lagged for a sustained share of the seconds, the kernel dropped datagrams on their sockets,
they lost samples, a browser participant's page ran late for a sustained share of the seconds (it times the
frames it receives: its lateness is in every latency it measures), the network wire (the user-space
impairment) fell behind, the machine was saturated and processes outside the run had a sizeable share of it
(the run's processes then got less CPU than they asked for, which can double a latency while the generator
still keeps its pace), or the machine stopped altogether (no process of the run sampled anything for seconds:
a paused virtual machine). Pure functions of a run's tables, so a run, a capacity step and a report judge
health the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from harness.analysis.seconds import per_second_total

__all__ = [
    "MACHINE_ROLE",
    "MAX_KERNEL_DROP_SHARE",
    "MAX_LAGGING_SHARE",
    "MAX_LATE_MS",
    "MAX_LATE_SECONDS_SHARE",
    "MAX_LATE_SHARE",
    "MAX_LOOP_LAG_MS",
    "MAX_SILENCE_S",
    "MAX_SKIPPED_SHARE",
    "OTHER_WORK_PCT",
    "SATURATED_IDLE_PCT",
    "SETTLE_S",
    "STEAL_NOTE_PCT",
    "WireLateness",
    "health_reasons",
    "machine_note",
    "machine_reasons",
    "network_reasons",
    "other_work",
    "page_reasons",
    "pause_reasons",
    "steady_window",
    "wire_lateness",
]


class Tables(Protocol):
    """What health needs of a run: its tables by name (a :class:`~harness.store.reader.RunReader`, or a view)."""

    def table(self, name: str) -> pd.DataFrame: ...


# Health limits past which a figure says more about the load generator than about the system.
MAX_LOOP_LAG_MS = 100.0
MAX_LAGGING_SHARE = 0.10
MAX_SKIPPED_SHARE = 0.02
SETTLE_S = 2.0
# Health: past these the wire, not the system, would be measured.
MAX_LATE_MS = 5.0
"""A packet the wire held that left more than this after its time was late (as ``harness.testbed.wire.LATE_MS``,
which counts them): about what a virtual machine's vCPU loses to its hypervisor now and then."""
MAX_LATE_SHARE = 0.01
"""Share of the packets the wire held past which it fell behind: its emulated delays' 99th percentile is then
more than :data:`MAX_LATE_MS` off. A share of packets, not of seconds: one preempted instant makes one second's
worst packet late, and a wire whose queue is always full (a link a sender overflows) would then fail on rare
hiccups that moved a handful of packets among thousands."""
MAX_LATE_SECONDS_SHARE = 0.10
"""For runs recorded before the wire counted its late packets (no ``packets_held``): the share of seconds whose
latest packet left more than :data:`MAX_LATE_MS` late past which the wire fell behind."""
MAX_KERNEL_DROP_SHARE = 0.001
MACHINE_ROLE = "machine"
"""Role of the ``probes`` rows about the whole machine (written by ``harness.probes.machine``)."""
MAX_SILENCE_S = 3.0
"""Seconds without a single ``probes`` row from the controller's machine past which the machine stopped. Its
probes sample every second in several processes (the machine, the controller, the media hosts, the wire), so
such a silence is every process held at once, as when the hypervisor pauses the virtual machine: seen on
2026-12-07, a run whose every probe skipped the same 7.9 s froze its media both ways for 6.9 s, and no other
rule saw it (nothing was sampled while it lasted)."""
STEAL_NOTE_PCT = 10.0
"""Mean CPU withheld by the hypervisor (100 = one core) from which an invalid run's reasons say so."""
SATURATED_IDLE_PCT = 10.0
"""Mean spare CPU of the machine (``idle_pct``, 100 = one core) below which it counts as saturated."""
OTHER_WORK_PCT = 50.0
"""Mean CPU of processes outside the run (100 = one core) that makes a run on a saturated machine ``invalid``:
half a core, as :data:`harness.probes.machine.QUIET_CORES` (an idle server or shell stays far below)."""


def steady_window(reader: Tables, duration_s: float) -> tuple[float, float] | None:
    """From the moment every participant that joined was in the call, for the scenario's duration.

    Joining (ICE, DTLS handshakes, first key frames) and leaving load the generator in bursts that say
    nothing about whether it kept up with the media; the health check looks at this window only.
    """
    joins = reader.table("joins")
    ok = joins[joins["ok"] == True]  # noqa: E712 - a pandas mask, not a truth test
    if ok.empty:
        return None
    joined = float((ok["ts"] + ok["join_ms"].fillna(0) / 1000).max())
    # A probe row describes the second before its ts, and adapters may still connect to the last joiners
    # (a room listing polled once a second): the window opens after both have passed.
    start = joined + SETTLE_S
    return start, joined + duration_s


def health_reasons(reader: Tables, window: tuple[float, float] | None = None) -> list[str]:
    """Reasons to mark a run ``invalid`` because the load generator itself was saturated.

    Signals from the media hosts, within ``window`` when given: their sources had to skip frames (the
    generator could not even produce its own media on time), their event loop woke up late for a sustained
    share of the seconds, the kernel dropped datagrams on their sockets (they did not read in time: loss the
    generator made, not the system), or they lost samples they could not buffer.
    """
    probes = reader.table("probes")
    hosts = probes[probes["role"] == "media_host"]
    if window is not None:
        hosts = hosts[(hosts["ts"] >= window[0]) & (hosts["ts"] <= window[1])]
    reasons = []
    produced = float(hosts["frames_produced"].fillna(0).sum())
    skipped = float(hosts["frames_skipped"].fillna(0).sum())
    if produced + skipped > 0 and skipped / (produced + skipped) > MAX_SKIPPED_SHARE:
        reasons.append(f"load generator saturated: its sources skipped {skipped / (produced + skipped):.1%} "
                       f"of their frames (limit {MAX_SKIPPED_SHARE:.0%})")
    lag = hosts["loop_lag_ms"].dropna()
    share = _lagging_share(lag)
    if share is not None:
        reasons.append(f"load generator saturated: media host event loop lagged > {MAX_LOOP_LAG_MS:g} ms "
                       f"in {share:.0%} of seconds (max {lag.max():.0f} ms)")
    drops = int(hosts["udp_drops"].fillna(0).sum())
    if drops > 0:
        reasons.append(f"load generator saturated: the kernel dropped {drops} datagrams on its own sockets "
                       "because it did not read them in time (full UDP receive buffers)")
    lost_samples = int(hosts["samples_dropped"].fillna(0).sum())
    if lost_samples > 0:
        reasons.append(f"load generator lost {lost_samples} samples it could not buffer: the results are "
                       "incomplete")
    reasons += page_reasons(probes, window)
    # The network emulation is part of the instrument too: a wire that fell behind is measured, not the system.
    reasons += network_reasons(probes, reader.table("network"), window)
    reasons += machine_reasons(probes, window)
    reasons += pause_reasons(probes, window)
    note = machine_note(probes, window) if reasons else None
    return reasons + [note] if note else reasons


def _lagging_share(lag: pd.Series) -> float | None:
    """The share of seconds whose worst lateness (ms) passed :data:`MAX_LOOP_LAG_MS`, when it passed
    :data:`MAX_LAGGING_SHARE` over at least 5 seconds; None otherwise (an event loop's or a page's)."""
    if len(lag) < 5:
        return None
    share = float((lag > MAX_LOOP_LAG_MS).mean())
    return share if share > MAX_LAGGING_SHARE else None


def page_reasons(probes: pd.DataFrame, window: tuple[float, float] | None) -> list[str]:
    """Why a run is invalid because its browser participants' pages ran late (none when they kept up).

    A browser participant times each received frame when the frame's callback runs on its page's main thread
    (``harness/browser/media.js``), so that thread's lateness adds to every latency the browser measures, and
    a starved Chromium on a busy machine makes its own figures. The page reports its worst lateness a second
    (``loop_lag_ms`` of its ``browser`` row); the limits are the media hosts' event-loop limits.
    """
    if probes.empty or "loop_lag_ms" not in probes.columns:
        return []
    pages = probes[(probes["role"] == "browser") & probes["loop_lag_ms"].notna()]
    if window is not None:
        pages = pages[(pages["ts"] >= window[0]) & (pages["ts"] <= window[1])]
    lag = pages["loop_lag_ms"]
    share = _lagging_share(lag)
    if share is None:
        return []
    return [f"browser participants saturated: their pages ran > {MAX_LOOP_LAG_MS:g} ms late in {share:.0%} of "
            f"seconds (max {lag.max():.0f} ms), late by as much on the frames they timed"]


def machine_note(probes: pd.DataFrame, window: tuple[float, float] | None) -> str | None:
    """Why an instrument fell behind, when the machine's hypervisor withheld a sizeable share of its CPU.

    Steal is not a reason to mark a run ``invalid`` by itself (the generator may have kept up), but beside
    one it tells a reader where the cores went: to other tenants of the host, not to this run's processes.
    """
    if probes.empty or "steal_pct" not in probes:
        return None
    rows = probes[probes["role"] == MACHINE_ROLE]
    if window is not None:
        rows = rows[(rows["ts"] >= window[0]) & (rows["ts"] <= window[1])]
    steal = rows["steal_pct"].dropna()
    if steal.empty or float(steal.mean()) < STEAL_NOTE_PCT:
        return None
    return (f"machine shared: its hypervisor gave {steal.mean():.0f}% of a core to other tenants on average "
            f"meanwhile (steal; max {steal.max():.0f}%)")


def other_work(probes: pd.DataFrame) -> pd.Series | None:
    """Per second, the CPU of the controller's machine that went to processes outside the run (100 = one core):
    the ``machine`` rows' busy CPU less every process of the run probed on that machine (controller, Locust,
    media hosts, browsers, local servers, the wire). Negative seconds (samples taken at slightly different
    instants) count as 0. None without ``machine`` rows."""
    if probes.empty:
        return None
    machine_rows = probes[probes["role"] == MACHINE_ROLE]
    busy = per_second_total(machine_rows, (MACHINE_ROLE,), "cpu_pct")
    if busy is None:
        return None
    ours = probes[(probes["role"] != MACHINE_ROLE) & probes["host"].isin(set(machine_rows["host"]))]
    theirs = per_second_total(ours, list(ours["role"].unique()), "cpu_pct")
    if theirs is not None:
        busy = busy - theirs.reindex(busy.index).fillna(0.0)
    return busy.clip(lower=0.0)


def machine_reasons(probes: pd.DataFrame, window: tuple[float, float] | None) -> list[str]:
    """A reason to mark a run ``invalid`` because the machine was saturated and not by the run alone.

    Within ``window`` when given: the machine had less than :data:`SATURATED_IDLE_PCT` of a core spare on
    average (idle, or running niced work that yields at once), and processes outside the run took at least
    :data:`OTHER_WORK_PCT` of a core on average (:func:`other_work`). A run that saturates the machine by
    itself is judged by its generator's own signals instead: a meeting sized to fill two cores is not flagged.
    """
    if probes.empty or "idle_pct" not in probes:
        return []
    if window is not None:
        probes = probes[(probes["ts"] >= window[0]) & (probes["ts"] <= window[1])]
    idle = probes.loc[probes["role"] == MACHINE_ROLE, "idle_pct"].dropna()
    if len(idle) < 3 or float(idle.mean()) >= SATURATED_IDLE_PCT:
        return []
    other = other_work(probes)
    if other is None or other.empty or float(other.mean()) < OTHER_WORK_PCT:
        return []
    return [f"machine saturated by other work: processes outside this run took {other.mean():.0f}% of a core "
            f"on average (max {other.max():.0f}%) while {idle.mean():.0f}% of a core was left spare"]


def pause_reasons(probes: pd.DataFrame, window: tuple[float, float] | None) -> list[str]:
    """A reason to mark a run ``invalid`` because the controller's machine stopped: no process of the run on it
    wrote a ``probes`` row for more than :data:`MAX_SILENCE_S` within ``window`` (when given). Runs recorded
    before the machine probe (no ``machine`` rows) are not judged."""
    if probes.empty:
        return []
    hosts = set(probes.loc[probes["role"] == MACHINE_ROLE, "host"])
    if not hosts:
        return []
    rows = probes[probes["host"].isin(hosts)]
    if window is not None:
        rows = rows[(rows["ts"] >= window[0]) & (rows["ts"] <= window[1])]
    ts = rows["ts"].sort_values().reset_index(drop=True)
    if len(ts) < 2:
        return []
    gaps = ts.diff()
    longest = int(gaps.idxmax())
    silence = float(gaps.iloc[longest])
    if silence <= MAX_SILENCE_S:
        return []
    start = float(ts.iloc[longest - 1]) - (window[0] if window is not None else float(ts.iloc[0]))
    return [f"machine stopped: none of the run's processes on it sampled anything for {silence:.1f} s "
            f"(from {start:.0f} s into the window; limit {MAX_SILENCE_S:g} s), as when its hypervisor pauses it"]


@dataclass(frozen=True, slots=True)
class WireLateness:
    """How well the network wire kept its packets' times, from its ``probes`` rows."""

    held: int | None
    """Packets it held for their departure time (None: recorded before the wire counted them)."""
    late: int
    """Of those, the packets it sent more than :data:`MAX_LATE_MS` after their time."""
    latest_ms: float | None
    """Its latest packet's lateness."""

    @property
    def late_share(self) -> float | None:
        """The share of the held packets sent late (None when it held none, or did not count them)."""
        return self.late / self.held if self.held else None


def wire_lateness(wire: pd.DataFrame) -> WireLateness | None:
    """What the wire's ``probes`` rows (role ``wire``) say of its packets' times; None without rows."""
    if wire.empty:
        return None
    lag = wire["loop_lag_ms"].dropna()
    held = wire["packets_held"].dropna() if "packets_held" in wire else pd.Series(dtype=float)
    total = int(held.sum()) if not held.empty else None
    late = int(wire["packets_late"].fillna(0).sum()) if total else 0
    return WireLateness(total, late, float(lag.max()) if not lag.empty else None)


def _late_reason(wire: pd.DataFrame) -> str | None:
    """Whether the wire's rows (within the window) say it sent too many packets late, and by how much."""
    lateness = wire_lateness(wire)
    if lateness is None:
        return None
    if lateness.held is not None:
        share = lateness.late_share
        if share is not None and share > MAX_LATE_SHARE:
            return (f"network wire fell behind: {share:.1%} of the packets it held left more than "
                    f"{MAX_LATE_MS:g} ms after their time (limit {MAX_LATE_SHARE:.0%}; "
                    f"latest {lateness.latest_ms or 0:.0f} ms)")
        return None
    lag = wire["loop_lag_ms"].dropna()
    if len(lag) >= 3:  # a run recorded before the wire counted its late packets
        seconds = float((lag > MAX_LATE_MS).mean())
        if seconds > MAX_LATE_SECONDS_SHARE:
            return (f"network wire fell behind: packets left more than {MAX_LATE_MS:g} ms late in "
                    f"{seconds:.0%} of seconds (max {lag.max():.0f} ms)")
    return None


def network_reasons(probes: pd.DataFrame, network: pd.DataFrame, window: tuple[float, float] | None) -> list[str]:
    """Reasons to mark a run ``invalid`` because the network emulation fell behind.

    Two signals, within ``window`` when given: the wire sent more than :data:`MAX_LATE_SHARE` of the packets it
    held over :data:`MAX_LATE_MS` after their time, or the kernel dropped packets the wire did not read in time
    (over :data:`MAX_KERNEL_DROP_SHARE` of them).
    """
    def inside(table: pd.DataFrame) -> pd.DataFrame:
        if window is None or table.empty:
            return table
        return table[(table["ts"] >= window[0]) & (table["ts"] <= window[1])]

    reasons = []
    wire = inside(probes[probes["role"] == "wire"]) if not probes.empty else probes
    late = _late_reason(wire)
    if late:
        reasons.append(late)
    rows = inside(network)
    if not rows.empty:
        up = rows[rows["direction"] == "up"]
        dropped = float(up["kernel_drops"].sum())
        carried = float(up["packets"].sum() + up["lost"].sum() + up["queue_drops"].sum())
        if dropped and dropped / (carried + dropped) > MAX_KERNEL_DROP_SHARE:
            reasons.append(f"network wire fell behind: the kernel dropped {dropped:.0f} packets it did not read "
                           f"in time ({dropped / (carried + dropped):.2%})")
    return reasons
