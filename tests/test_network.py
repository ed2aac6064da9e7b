"""Network profiles: presets, per-direction keys, timelines, and one-line errors naming file and field."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario.network import (
    PRESET_DIR,
    BurstLoss,
    NetworkProfile,
    ProfileError,
    Shape,
    parse_profile,
    preset_names,
)
from harness.scenario.scenario import load_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ("good-wifi", "lossy-wifi", "3g", "satellite", "congested")


def test_the_documented_presets_ship_with_their_numbers_in_words() -> None:
    assert set(PRESETS) <= set(preset_names())
    for name in PRESETS:
        profile = parse_profile(name)
        assert profile.name == name
        assert not profile.clean
        # The description states the delay it configures, so a reader sees the numbers.
        assert f"{profile.up.delay_ms:g} ms" in profile.description
        raw = tomllib.loads((PRESET_DIR / f"{name}.toml").read_text())
        assert raw["description"] == profile.description


def test_three_g_is_asymmetric() -> None:
    profile = parse_profile("3g")
    assert (profile.up.rate_kbps, profile.down.rate_kbps) == (750, 1600)
    assert profile.up.delay_ms == profile.down.delay_ms == 75


def test_both_way_keys_then_direction_keys_then_a_timeline() -> None:
    profile = parse_profile({"preset": "good-wifi", "delay_ms": 30, "down": {"rate_kbps": 2000},
                             "timeline": [{"at_s": 30, "duration_s": 20, "down": {"rate_kbps": 500}},
                                          {"at_s": 40, "loss_pct": 5}]})
    assert profile.name == "good-wifi (modified)" and profile.description == ""
    assert profile.up == Shape(delay_ms=30, jitter_ms=3, loss_pct=0.1)
    assert profile.down.rate_kbps == 2000
    assert profile.changes() == [0.0, 30.0, 40.0, 50.0]
    assert profile.at(29.9)[1].rate_kbps == 2000
    assert profile.at(30)[1].rate_kbps == 500
    up, down = profile.at(45)  # both steps overlap
    assert (down.rate_kbps, down.loss_pct, up.loss_pct) == (500, 5, 5)
    assert profile.at(50)[1] == Shape(delay_ms=30, jitter_ms=3, loss_pct=5, rate_kbps=2000)


def test_resolved_form_round_trips_without_the_preset_files(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('name = "t"\n[[groups]]\nname = "a"\ncount = 1\nnetwork = "lossy-wifi"\n'
                    '[[groups]]\nname = "b"\ncount = 1\n')
    scenario = load_scenario(path)
    assert scenario.impaired
    again = scenario_from_dict(scenario.to_dict())
    assert again.groups == scenario.groups and again.sha256() == scenario.sha256()


def test_scenarios_without_networks_keep_their_digest() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "default.toml")
    assert "network" not in scenario.to_dict()["groups"][0]
    assert not scenario.impaired


def test_presets_next_to_the_scenario_come_first(tmp_path: Path) -> None:
    (tmp_path / "networks").mkdir()
    (tmp_path / "networks" / "3g.toml").write_text('description = "mine"\ndelay_ms = 1\n')
    path = tmp_path / "s.toml"
    path.write_text('name = "t"\n[[groups]]\nname = "a"\ncount = 1\nnetwork = "3g"\n')
    assert load_scenario(path).groups[0].network == NetworkProfile("3g", Shape(delay_ms=1), Shape(delay_ms=1),
                                                                     description="mine")


def test_gilbert_elliott_mean_loss() -> None:
    burst = BurstLoss(p_pct=0.5, r_pct=25, loss_bad_pct=60)
    assert math.isclose(burst.mean_loss_pct, 0.5 / 25.5 * 60)
    assert "bursty loss" in Shape(burst=burst).describe()


@pytest.mark.parametrize(
    ("network", "field", "words"),
    [
        ('"4g"', "groups[0].network.preset", "no preset '4g'"),
        ("{ delay_ms = -1 }", "groups[0].network.delay_ms", "between 0 and"),
        ("{ delay_ms = 10, jitter_ms = 20 }", "groups[0].network.jitter_ms", "delay_ms"),
        ("{ up = { rate = 3 } }", "groups[0].network.up.rate", "unknown key"),
        ("{ down = { rate_kbps = 1 } }", "groups[0].network.down.rate_kbps", "between 8"),
        ("{ loss_pct = 101 }", "groups[0].network.loss_pct", "percentage"),
        ('{ loss_pct = "x" }', "groups[0].network.loss_pct", "must be a number"),
        ("{ burst = { p_pct = 1 } }", "groups[0].network.burst", "p_pct and r_pct"),
        ("{ burst = { p_pct = 1, r_pct = 0 } }", "groups[0].network.burst.r_pct", "never ends"),
        ("{ timeline = [ { at_s = 3 } ] }", "groups[0].network.timeline[0]", "must change something"),
        ("{ timeline = [ { down = { delay_ms = 3 } } ] }", "groups[0].network.timeline[0]", "needs at_s"),
        ("{ timeline = [ { at_s = 3, down = { jitter_ms = 5 } } ] }", "groups[0].network.timeline[0].down.jitter_ms",
         "delay_ms"),
        ("{ timeline = [ { at_s = -3, loss_pct = 1 } ] }", "groups[0].network.timeline[0].at_s", "between 0"),
        ("3", "groups[0].network", "preset name or a table"),
    ],
)
def test_bad_networks_name_file_and_field(tmp_path: Path, network: str, field: str, words: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'name = "t"\n[[groups]]\nname = "a"\ncount = 1\nnetwork = {network}\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}: "), message
    assert words in message and "\n" not in message


def test_a_preset_may_not_hold_a_timeline(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text('delay_ms = 1\n[[timeline]]\nat_s = 1\nloss_pct = 1\n')
    with pytest.raises(ProfileError, match="may not"):
        parse_profile("x", search=[tmp_path])
