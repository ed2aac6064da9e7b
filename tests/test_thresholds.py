"""Tests for harness.scenario.thresholds: parsing, validation and evaluation against a summary."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from harness.scenario.thresholds import KNOWN_KEYS, Threshold, evaluate, lookup, parse_threshold


@pytest.mark.parametrize(
    ("key", "condition", "op", "bound", "expr"),
    [
        ("video_latency_ms.p95", "< 150", "<", 150.0, "video_latency_ms.p95 < 150"),
        ("packet_loss_pct", "<1", "<", 1.0, "packet_loss_pct < 1"),
        ("participants.failed", " == 0 ", "==", 0.0, "participants.failed == 0"),
        ("fps.p50", ">= 24.5", ">=", 24.5, "fps.p50 >= 24.5"),
        ("sut_cpu_pct.max", "<= 1e3", "<=", 1000.0, "sut_cpu_pct.max <= 1000"),
        ("participants.joined", "> 9", ">", 9.0, "participants.joined > 9"),
        ("freezes_per_min", "!= -0.5", "!=", -0.5, "freezes_per_min != -0.5"),
        (" join_ms.p99 ", "<2000", "<", 2000.0, "join_ms.p99 < 2000"),
    ],
)
def test_parse(key: str, condition: str, op: str, bound: float, expr: str) -> None:
    threshold = parse_threshold(key, condition)
    assert threshold == Threshold(key.strip(), op, bound)
    assert threshold.expr == expr


@pytest.mark.parametrize(
    ("key", "condition", "message"),
    [
        ("video_latency_ms", "< 150", r"unknown threshold key 'video_latency_ms' \(a distribution: use"),
        ("latency.p95", "< 150", "unknown threshold key 'latency.p95'; known keys: .*video_latency_ms.p95"),
        ("packet_loss_pct", "150", "must be an operator"),
        ("packet_loss_pct", "=< 1", "must be an operator"),
        ("packet_loss_pct", "< 1 %", "must be an operator"),
        ("packet_loss_pct", "< one", "'one' is not a number"),
        ("packet_loss_pct", "< nan", "must be finite"),
        ("packet_loss_pct", "< inf", "must be finite"),
        ("packet_loss_pct", "", "must be an operator"),
        ("packet_loss_pct", 1, "must be a string like '< 150'"),
        (3, "< 1", "key must be a string"),
    ],
)
def test_parse_errors(key: Any, condition: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_threshold(key, condition)


def test_threshold_is_validated_and_frozen() -> None:
    with pytest.raises(ValueError, match="operator"):
        Threshold("packet_loss_pct", "=<", 1.0)
    with pytest.raises(ValueError, match="unknown threshold key"):
        Threshold("nope", "<", 1.0)
    with pytest.raises(ValueError, match="number"):
        Threshold("packet_loss_pct", "<", "1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        Threshold("packet_loss_pct", "<", float("nan"))
    threshold = Threshold("packet_loss_pct", "<", 1)
    assert threshold.bound == 1.0 and isinstance(threshold.bound, float)
    assert threshold == Threshold("packet_loss_pct", "<", 1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        threshold.bound = 2.0  # type: ignore[misc]


def test_known_keys() -> None:
    for key in (
        "video_latency_ms.p50",
        "video_latency_ms.p95",
        "video_latency_ms.p99",
        "video_latency_ms.mean",
        "audio_latency_ms.p95",
        "join_ms.p95",
        "rtt_ms.mean",
        "jitter_ms.p95",
        "fps.p50",
        "bitrate_kbps.mean",
        "packet_loss_pct",
        "frame_loss_pct",
        "freezes_per_min",
        "participants.failed",
        "participants.joined",
        "sut_cpu_pct.mean",
        "sut_cpu_pct.max",
        "loadgen_cpu_pct.mean",
        "loadgen_cpu_pct.max",
    ):
        assert key in KNOWN_KEYS
    assert "video_latency_ms" not in KNOWN_KEYS
    assert "thresholds" not in KNOWN_KEYS


SUMMARY: dict[str, Any] = {
    "video_latency_ms": {"p50": 80.0, "p95": 140.0, "p99": None, "mean": 85.0, "samples": 90},
    "packet_loss_pct": 1.5,
    "frame_loss_pct": float("nan"),
    "participants": {"planned": 10, "joined": 10, "failed": 0},
    "sut_cpu_pct": None,
    "duration_s": True,
}


def test_lookup() -> None:
    assert lookup(SUMMARY, "video_latency_ms.p95") == 140.0
    assert lookup(SUMMARY, "video_latency_ms.samples") == 90
    assert lookup(SUMMARY, "video_latency_ms.p99") is None
    assert lookup(SUMMARY, "participants.failed") == 0
    assert lookup(SUMMARY, "sut_cpu_pct.max") is None  # the whole group is null
    assert lookup(SUMMARY, "frame_loss_pct") is None  # NaN counts as missing
    assert lookup(SUMMARY, "duration_s") is None  # a bool is not a figure
    assert lookup(SUMMARY, "rtt_ms.p95") is None  # absent


def test_evaluate() -> None:
    thresholds = [
        parse_threshold("video_latency_ms.p95", "< 150"),
        parse_threshold("video_latency_ms.p95", "< 140"),
        parse_threshold("video_latency_ms.p95", "<= 140"),
        parse_threshold("packet_loss_pct", "< 1"),
        parse_threshold("participants.failed", "== 0"),
        parse_threshold("participants.joined", "!= 10"),
        parse_threshold("video_latency_ms.p99", "< 1000"),
        parse_threshold("sut_cpu_pct.max", "< 100"),
        parse_threshold("video_latency_ms.samples", ">= 90"),
        parse_threshold("video_latency_ms.mean", "> 85"),
    ]
    assert evaluate(thresholds, SUMMARY) == [
        {"expr": "video_latency_ms.p95 < 150", "value": 140.0, "ok": True},
        {"expr": "video_latency_ms.p95 < 140", "value": 140.0, "ok": False},
        {"expr": "video_latency_ms.p95 <= 140", "value": 140.0, "ok": True},
        {"expr": "packet_loss_pct < 1", "value": 1.5, "ok": False},
        {"expr": "participants.failed == 0", "value": 0, "ok": True},
        {"expr": "participants.joined != 10", "value": 10, "ok": False},
        {"expr": "video_latency_ms.p99 < 1000", "value": None, "ok": False},
        {"expr": "sut_cpu_pct.max < 100", "value": None, "ok": False},
        {"expr": "video_latency_ms.samples >= 90", "value": 90, "ok": True},
        {"expr": "video_latency_ms.mean > 85", "value": 85.0, "ok": False},
    ]
    assert evaluate([], SUMMARY) == []
