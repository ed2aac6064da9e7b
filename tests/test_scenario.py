"""Scenario loading: valid files resolve, bad files get one line naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ScenarioError
from harness.scenario.scenario import load_scenario, parse_scenario, scenario_from_dict

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


MINIMAL = """
name = "t"
[[groups]]
name = "a"
count = 3
"""


def test_default_scenario_is_the_documented_meeting() -> None:
    s = load_scenario(ROOT / "scenarios" / "default.toml")
    assert s.participants == 4
    assert s.duration_s == 30
    assert s.groups[0].publish == ("audio", "video")
    assert s.groups[0].subscribe
    # 480x270 leaves the generator headroom for two systems on 2 cores (see the comment in the file).
    assert (s.video.width, s.video.height, s.video.fps) == (480, 270, 30)
    assert s.systems == ("p2p", "reference")
    assert {t.key for t in s.thresholds} >= {"video_latency_ms.p95", "packet_loss_pct"}


def test_every_shipped_scenario_loads() -> None:
    for path in (ROOT / "scenarios").glob("*.toml"):
        assert load_scenario(path).participants >= 1


def test_minimal_defaults(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, MINIMAL))
    assert s.participants == 3 and s.spawn_rate == 2.0 and s.video.codec == "VP8"


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("bogus = 1\n" + MINIMAL, "bogus", "unknown key"),
        (MINIMAL + "bogus = 1\n", "groups[0].bogus", "unknown key"),
        (MINIMAL.replace("count = 3", "count = -1"), "groups[0]", "negative"),
        (MINIMAL.replace("count = 3", 'count = "3"'), "groups[0].count", "must be an integer"),
        (MINIMAL.replace('name = "t"', 'name = "t"\nduration_s = "long"'), "duration_s", "must be a number"),
        (MINIMAL + "[media.video]\nwidth = 641\n", "media.video", "even"),
        (MINIMAL + "[media.video]\ncolour = 1\n", "media.video.colour", "unknown key"),
        (MINIMAL.replace('count = 3', 'count = 3\npublish = ["smell"]'), "groups[0]", "publish"),
        (MINIMAL + '[thresholds]\n"nope.p95" = "< 3"\n', "thresholds.nope.p95", ""),
        (MINIMAL + '[thresholds]\n"packet_loss_pct" = "about 3"\n', "thresholds.packet_loss_pct", ""),
        (MINIMAL + '[thresholds]\n"packet_loss_pct" = 3\n', "thresholds.packet_loss_pct", "string"),
        ('[[groups]]\nname = "a"\ncount = 1\n', "name", "required"),
        ('name = "x"\n', "scenario", "group"),
        (MINIMAL.replace("count = 3", "count = 3\njoin_delay_s = -1"), "groups[0]", "join_delay_s"),
        (MINIMAL.replace("count = 3", "count = 3\nstay_s = 0"), "groups[0]", "stay_s must be positive"),
        (MINIMAL.replace("count = 3", "count = 3\npublishers_per_encoder = 0"), "groups[0]", "between 1 and 32"),
    ],
)
def test_bad_files_name_file_and_field(tmp_path: Path, text: str, field: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}")
    assert words in message
    assert "\n" not in message


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(write(tmp_path, "name = = 1"))
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.toml")


def test_overrides_spread_participants_exactly() -> None:
    s = parse_scenario({"name": "x", "groups": [{"name": "a", "count": 3}, {"name": "b", "count": 1}]})
    scaled = s.with_overrides(participants=10, duration_s=5)
    assert [g.count for g in scaled.groups] == [8, 2]
    assert scaled.participants == 10 and scaled.duration_s == 5
    with pytest.raises(ScenarioError, match="at least 1"):
        s.with_overrides(participants=0)


def test_round_trip_through_dict_keeps_digest() -> None:
    s = load_scenario(ROOT / "scenarios" / "default.toml")
    again = scenario_from_dict(s.to_dict())
    assert again.sha256() == s.sha256()
    assert again.thresholds == s.thresholds


def test_late_joiners_and_early_leavers_survive_the_round_trip() -> None:
    s = parse_scenario({"name": "x", "spawn_rate": 2, "groups": [
        {"name": "a", "count": 2}, {"name": "late", "count": 1, "join_delay_s": 5},
        {"name": "early", "count": 1, "stay_s": 4}]})
    # Measurement starts once everyone is in: the ramp covers the spawn rate and the latest join delay.
    assert s.ramp_s == 4 / 2 + 5
    again = scenario_from_dict(json.loads(json.dumps(s.to_dict())))  # as scenario.json stores it
    assert again == s and again.groups[0].stay_s is None and again.groups[2].stay_s == 4


def test_publishers_per_encoder_keeps_older_digests() -> None:
    plain = parse_scenario({"name": "x", "groups": [{"name": "a", "count": 3}]})
    explicit = parse_scenario({"name": "x", "groups": [{"name": "a", "count": 3, "publishers_per_encoder": 1}]})
    shared = parse_scenario({"name": "x", "groups": [{"name": "a", "count": 3, "publishers_per_encoder": 4}]})
    assert plain.sha256() == explicit.sha256() != shared.sha256()
    assert "publishers_per_encoder" not in plain.to_dict()["groups"][0]
    assert scenario_from_dict(shared.to_dict()).groups[0].publishers_per_encoder == 4
