"""The language of a test: scenarios, network profiles and thresholds.

``scenario`` turns a TOML file into a validated, frozen :class:`~harness.scenario.scenario.Scenario`;
``network`` parses network profiles (delay, jitter, loss, rate); ``thresholds`` parses pass/fail conditions
and names the summary keys they may address (the scenario loader and the summary both depend on it, so it
lives here, below both).

May import: :mod:`harness.errors` only. Every other layer may import it.
"""
