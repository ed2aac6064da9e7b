"""JUnit XML: the format every CI system shows as test results, for thresholds and comparison verdicts.

One ``<testcase>`` per checked thing (a threshold of a run, or a metric of a comparison), grouped in one
``<testsuite>``. A failed check is a ``<failure>`` whose message carries the values and the limit, so a red
test in a CI page says what moved without opening the results. Written atomically like every other file.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import StoreError

__all__ = ["Case", "threshold_cases", "to_xml", "write_junit"]


@dataclass(frozen=True, slots=True)
class Case:
    """One JUnit test case: passed unless ``failure`` (a one-line message) or ``skipped`` is set."""

    classname: str
    name: str
    failure: str | None = None
    skipped: str | None = None
    details: str = ""
    """Longer text shown with the case (``<system-out>``)."""

    def __post_init__(self) -> None:
        if not self.classname or not self.name:
            raise ValueError("a JUnit case needs a classname and a name")
        if self.failure is not None and self.skipped is not None:
            raise ValueError("a JUnit case is either failed or skipped, not both")


def _safe(part: str) -> str:
    # JUnit readers split classnames at dots into packages; dots inside a part would make up levels.
    return part.replace(".", "_") or "_"


def threshold_cases(summary: Mapping[str, Any], scenario: str, system: str, run: str | None = None) -> list[Case]:
    """One case per threshold result in ``summary["thresholds"]``: failed when the threshold did not hold.

    ``run`` (e.g. ``rep2`` or a run id) tells repetitions apart in the case names.
    """
    cases = []
    classname = f"confbench.{_safe(scenario)}.{_safe(system)}.thresholds"
    for entry in summary.get("thresholds") or []:
        if not isinstance(entry, Mapping):
            continue
        expr = str(entry.get("expr"))
        name = f"{expr} [{run}]" if run else expr
        value = entry.get("value")
        failure = None
        if entry.get("ok") is not True:
            shown = "no value (nothing measured)" if value is None else f"value {value}"
            failure = f"threshold {expr} failed: {shown}"
        cases.append(Case(classname=classname, name=name, failure=failure,
                          details=f"{expr}: value {value}, run {summary.get('run_id')}"))
    return cases


def to_xml(suite: str, cases: Sequence[Case]) -> bytes:
    """The JUnit XML document of ``cases`` as one test suite named ``suite``."""
    failures = sum(1 for case in cases if case.failure is not None)
    skipped = sum(1 for case in cases if case.skipped is not None)
    root = ET.Element("testsuites", name="confbench", tests=str(len(cases)), failures=str(failures))
    element = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures),
                            errors="0", skipped=str(skipped))
    for case in cases:
        item = ET.SubElement(element, "testcase", classname=case.classname, name=case.name, time="0")
        if case.failure is not None:
            failure = ET.SubElement(item, "failure", message=case.failure, type="confbench")
            failure.text = case.details or case.failure
        elif case.skipped is not None:
            ET.SubElement(item, "skipped", message=case.skipped)
        if case.details:
            ET.SubElement(item, "system-out").text = case.details
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(path: Path | str, suite: str, cases: Sequence[Case]) -> None:
    """Write ``cases`` to ``path`` as JUnit XML (temporary file, then rename)."""
    target = Path(path)
    partial = target.with_name(f".{target.name}.partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(to_xml(suite, cases))
        os.replace(partial, target)
    except OSError as exc:
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from None
