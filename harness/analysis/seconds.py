"""Probe columns second by second: processes sample about once a second, each on its own clock.

Shared by the summary, the health rules and the report's charts, so that all of them align samples alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["per_process_seconds", "per_second_total"]


def per_process_seconds(probes: pd.DataFrame, roles: Sequence[str], column: str) -> pd.DataFrame:
    """A probe column per second: one column per process (host, pid), rows indexed by whole UNIX second.

    Each process samples about once a second, but not in step with the others or with the clock's
    seconds: a plain per-second sum would sometimes miss a process and sometimes count it twice (dips
    and spikes that are not there). So samples are aligned to the nearest second, one missed second inside
    a process's lifetime is bridged from the previous sample, and nothing is invented outside it.
    """
    rows = probes[probes["role"].isin(list(roles))].dropna(subset=[column])
    if rows.empty:
        return pd.DataFrame()
    rows = rows.assign(sec=np.round(rows["ts"].to_numpy()))
    table = rows.pivot_table(index="sec", columns=["host", "pid"], values=column, aggfunc="mean")
    table = table.reindex(np.arange(table.index.min(), table.index.max() + 1))
    alive = table.notna()
    lifetime = alive.cummax() & alive[::-1].cummax()[::-1]
    return table.ffill(limit=1).where(lifetime)


def per_second_total(probes: pd.DataFrame, roles: Sequence[str], column: str) -> pd.Series | None:
    """The sum over the processes of ``roles`` for every second (see :func:`per_process_seconds`)."""
    table = per_process_seconds(probes, roles, column)
    if table.empty:
        return None
    return table.sum(axis=1, min_count=1).dropna()
