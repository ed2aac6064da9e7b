"""Reports: runs' results → charts (PNG) and one self-contained HTML page.

Reports are pure functions of the results folders (DESIGN.md §5.7): :func:`build_report` reads them through
the store, :func:`render_report` draws already loaded :class:`RunData`, and :data:`CHARTS` lists the charts in
page order (a new metric is one new chart function registered with :func:`chart`). The pages' markup is in
``templates/`` (Jinja2).

May import: :mod:`harness.analysis`, :mod:`harness.store`, :mod:`harness.scenario`, :mod:`harness.errors`:
nothing that runs a system or media.
"""

from __future__ import annotations

from harness.report.charts import CHARTS, ChartFunc, chart, charts_for
from harness.report.data import RunData, load_run, load_runs, with_unique_labels
from harness.report.html import build_report, render_report

__all__ = [
    "CHARTS",
    "ChartFunc",
    "RunData",
    "build_report",
    "chart",
    "charts_for",
    "load_run",
    "load_runs",
    "render_report",
    "with_unique_labels",
]
