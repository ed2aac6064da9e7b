"""The harness's locustfile: ``locust -f harness/loadgen/locustfile.py`` runs a scenario with Locust's UI.

``confbench run`` uses this same file headless. Locust imports a locustfile before it parses its options, so
the scenario (which decides the User classes) is read from ``--confbench-scenario`` in the raw command line,
or ``CONFBENCH_SCENARIO``, or ``scenarios/default.toml``.
"""

from __future__ import annotations

import json
import os
import sys

from harness.errors import HarnessError
from harness.loadgen import plugin  # noqa: F401 - registers the harness's Locust hooks
from harness.loadgen.runfile import define
from harness.orchestrate.direct import install
from harness.scenario.scenario import Scenario, load_scenario, scenario_from_dict


def _scenario_path() -> str:
    argv = sys.argv
    for i, arg in enumerate(argv):
        if arg == "--confbench-scenario" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--confbench-scenario="):
            return arg.split("=", 1)[1]
    return os.environ.get("CONFBENCH_SCENARIO") or "scenarios/default.toml"


def _load(path: str) -> Scenario:
    # confbench run hands over the resolved scenario (command-line overrides applied) as JSON.
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as fh:
            return scenario_from_dict(json.load(fh))
    return load_scenario(path)


# A run started by plain `locust` opens its own results folder (the locustfile is an entry point, like the CLI).
install()

try:
    _SCENARIO = _load(_scenario_path())
except (HarnessError, OSError, ValueError) as _exc:
    sys.stderr.write(f"confbench: {_exc}\n")
    raise SystemExit(2) from None

# A capacity search (``confbench capacity``) adds its load shape; the groups then become proportions.
_CAPACITY = "--confbench-capacity" in sys.argv or os.environ.get("CONFBENCH_CAPACITY") == "1"
define(globals(), _SCENARIO, capacity=_CAPACITY)
