"""The load generator's health: when a figure says more about the instrument than about the system.

A run is marked ``invalid`` (and a capacity step is judged ``generator``) when the media hosts skipped frames,
their event loop lagged for a sustained share of the seconds, the kernel dropped datagrams on their sockets,
they lost samples, or the network wire (the user-space impairment) fell behind. Pure functions of a run's
tables, so a run, a capacity step and a report judge health the same way.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

__all__ = [
    "MACHINE_ROLE",
    "MAX_KERNEL_DROP_SHARE",
    "MAX_LAGGING_SHARE",
    "MAX_LATE_MS",
    "MAX_LATE_SHARE",
    "MAX_LOOP_LAG_MS",
    "MAX_SKIPPED_SHARE",
    "SETTLE_S",
    "STEAL_NOTE_PCT",
    "health_reasons",
    "machine_note",
    "network_reasons",
    "steady_window",
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
MAX_LATE_SHARE = 0.10
MAX_KERNEL_DROP_SHARE = 0.001
MACHINE_ROLE = "machine"
"""Role of the ``probes`` rows about the whole machine (written by ``harness.probes.machine``)."""
STEAL_NOTE_PCT = 10.0
"""Mean CPU withheld by the hypervisor (100 = one core) from which an invalid run's reasons say so."""


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
    if len(lag) >= 5:
        share = float((lag > MAX_LOOP_LAG_MS).mean())
        if share > MAX_LAGGING_SHARE:
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
    # The network emulation is part of the instrument too: a wire that fell behind is measured, not the system.
    reasons += network_reasons(probes, reader.table("network"), window)
    note = machine_note(probes, window) if reasons else None
    return reasons + [note] if note else reasons


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


def network_reasons(probes: pd.DataFrame, network: pd.DataFrame, window: tuple[float, float] | None) -> list[str]:
    """Reasons to mark a run ``invalid`` because the network emulation fell behind.

    Two signals, within ``window`` when given: the wire sent packets late (more than :data:`MAX_LATE_MS`
    after their time in over :data:`MAX_LATE_SHARE` of the seconds), or the kernel dropped packets the wire
    did not read in time (over :data:`MAX_KERNEL_DROP_SHARE` of them).
    """
    def inside(table: pd.DataFrame) -> pd.DataFrame:
        if window is None or table.empty:
            return table
        return table[(table["ts"] >= window[0]) & (table["ts"] <= window[1])]

    reasons = []
    wire = inside(probes[probes["role"] == "wire"]) if not probes.empty else probes
    lag = wire["loop_lag_ms"].dropna() if not wire.empty else pd.Series(dtype=float)
    if len(lag) >= 3:
        share = float((lag > MAX_LATE_MS).mean())
        if share > MAX_LATE_SHARE:
            reasons.append(f"network wire fell behind: packets left more than {MAX_LATE_MS:g} ms late in "
                           f"{share:.0%} of seconds (max {lag.max():.0f} ms)")
    rows = inside(network)
    if not rows.empty:
        up = rows[rows["direction"] == "up"]
        dropped = float(up["kernel_drops"].sum())
        carried = float(up["packets"].sum() + up["lost"].sum() + up["queue_drops"].sum())
        if dropped and dropped / (carried + dropped) > MAX_KERNEL_DROP_SHARE:
            reasons.append(f"network wire fell behind: the kernel dropped {dropped:.0f} packets it did not read "
                           f"in time ({dropped / (carried + dropped):.2%})")
    return reasons
