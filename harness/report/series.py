"""Tables to the series the charts draw: rows selected, values as floats, seconds since the start, time bins.

Split from :mod:`harness.report.charts` (which draws); pure functions of :class:`RunData` and DataFrames.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness.report.data import RunData

__all__ = [
    "as_floats",
    "bin_width",
    "binned_quantiles",
    "finite_values",
    "run_duration",
    "seconds_since_start",
    "select_in",
    "select_rows",
    "time_bins",
    "with_gaps",
]

FloatArray = npt.NDArray[np.float64]

# Time series are drawn per second; long runs get wider bins so that a chart stays readable.
MAX_BINS = 600


NICE_BIN_WIDTHS = (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def select_rows(frame: pd.DataFrame, **equals: object) -> pd.DataFrame:
    """Rows of ``frame`` whose columns equal the given values; no rows when a column is missing."""
    for column, value in equals.items():
        if column not in frame.columns:
            return frame.iloc[0:0]
        frame = frame[frame[column] == value]
    return frame


def select_in(frame: pd.DataFrame, column: str, values: Iterable[str]) -> pd.DataFrame:
    if column not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame[column].isin(list(values))]


def as_floats(frame: pd.DataFrame, column: str) -> pd.Series:
    """``frame[column]`` as floats (NaN for nulls); all NaN when the column is missing."""
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[column], errors="coerce").astype("float64")


def finite_values(frame: pd.DataFrame, column: str) -> FloatArray:
    """The finite values of ``frame[column]``."""
    values = as_floats(frame, column).to_numpy(dtype=np.float64)
    return values[np.isfinite(values)]


def seconds_since_start(run: RunData, frame: pd.DataFrame) -> pd.Series:
    """Seconds since the run started for every row of ``frame``."""
    origin = run.time_origin()
    ts = as_floats(frame, "ts")
    return ts - origin if origin is not None else ts * np.nan


def run_duration(run: RunData) -> float:
    longest = 0.0
    for name in ("frames", "streams", "probes", "audio", "joins"):
        elapsed = seconds_since_start(run, run.table(name)).max()
        if pd.notna(elapsed):
            longest = max(longest, float(elapsed))
    return longest


def bin_width(runs: Sequence[RunData]) -> float:
    """Seconds per point in the time series: 1 s, or wider when the longest run would need too many points."""
    longest = max((run_duration(run) for run in runs), default=0.0)
    for width in NICE_BIN_WIDTHS:
        if longest / width <= MAX_BINS:
            return width
    return math.ceil(longest / MAX_BINS)


def time_bins(elapsed: pd.Series, width: float) -> pd.Series:
    return np.floor(elapsed / width)


def binned_quantiles(
    elapsed: pd.Series, values: pd.Series, width: float, quantiles: Sequence[float]
) -> pd.DataFrame:
    """Quantiles of ``values`` per time bin, indexed by the bin's centre in seconds.

    Bins without samples are kept as NaN so that an outage shows as a gap instead of a line across it.
    """
    frame = pd.DataFrame({"bin": time_bins(elapsed, width), "value": values}).dropna()
    frame = frame[np.isfinite(frame["value"])]
    if frame.empty:
        return pd.DataFrame(columns=list(quantiles), dtype="float64")
    grouped = frame.groupby("bin")["value"]
    result = pd.DataFrame({q: grouped.quantile(q) for q in quantiles})
    return with_gaps(result, width)


def with_gaps(result: pd.DataFrame, width: float) -> pd.DataFrame:
    first, last = int(result.index.min()), int(result.index.max())
    result = result.reindex(np.arange(first, last + 1, dtype="float64"))
    result.index = (result.index + 0.5) * width
    return result
