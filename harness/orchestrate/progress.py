"""Progress lines on the terminal (stderr) while a run or a capacity search goes: what the commands print."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["capacity_progress", "progress_printer"]


def progress_printer(label: str) -> Callable[[dict[str, Any]], None]:
    """A progress callback for a run: one line rewritten in place on a terminal, a line every 5 s otherwise."""
    start = time.monotonic()
    tty = sys.stderr.isatty()

    def show(p: dict[str, Any]) -> None:
        elapsed = time.monotonic() - start
        line = (f"[{label}] {elapsed:5.0f}/{p.get('run_time_s', 0)} s  participants "
                f"{p.get('joined', 0)}/{p.get('planned', '?')} joined, {p.get('failed', 0)} failed  "
                f"frames {p.get('frames', 0)}")
        if tty:
            sys.stderr.write("\r" + line.ljust(100))
        elif int(elapsed) % 5 == 0 and int(elapsed) != getattr(show, "last", -1):
            show.last = int(elapsed)  # type: ignore[attr-defined]
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return show


def capacity_progress(label: str) -> Callable[[dict[str, Any]], None]:
    """A progress callback for a capacity search: the step, its participants and the highest passing step."""
    start = time.monotonic()
    tty = sys.stderr.isatty()
    last: dict[str, Any] = {}

    def show(p: dict[str, Any]) -> None:
        state = p.get("capacity") or {}
        line = (f"[{label} capacity] {time.monotonic() - start:5.0f} s  step {state.get('step', '-')}: "
                f"{state.get('participants', '-')} participants ({state.get('phase', '-')}, "
                f"{state.get('state', 'starting')})  joined {p.get('joined', 0)}, failed {p.get('failed', 0)}  "
                f"highest passing step: {state.get('passed') or '-'}")
        if tty:
            sys.stderr.write("\r" + line.ljust(110))
        elif state != last.get("state") or int(time.monotonic() - start) % 30 == 0 and line != last.get("line"):
            sys.stderr.write(line + "\n")
        last.update(state=state, line=line)
        sys.stderr.flush()

    return show
