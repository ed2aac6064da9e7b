"""Hostile names: a scenario cannot name a group ``<script>``, and names that reach a report from results
(participants, groups, errors, events) are escaped there (docs/reliability.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_report import _page, make_run

from harness.errors import ScenarioError
from harness.scenario.scenario import load_scenario

HOSTILE = "<script>alert(1)</script>"


def test_a_group_named_script_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'name = "x"\nduration_s = 5\n[[groups]]\nname = "{HOSTILE}"\ncount = 1\n')
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert "\n" not in str(err.value) and "name" in str(err.value)


def test_names_from_results_are_escaped_in_the_report() -> None:
    run = make_run("p2p", 1, status="failed")
    joins = run.tables["joins"]
    joins["participant"] = [f"{HOSTILE}-{i}" for i in range(len(joins))]
    joins["group"] = HOSTILE
    joins.loc[0, "ok"] = False
    joins.loc[0, "error"] = HOSTILE
    run.manifest["errors"] = [f"{HOSTILE} failed"]
    run.manifest["scenario"]["room"] = HOSTILE
    run.manifest["scenario"]["groups"] = [{"name": HOSTILE, "count": 3}]
    page = _page([run])
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
