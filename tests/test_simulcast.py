"""Simulcast pieces that need no network: layers, the munged offer, the automatic layer choice, the scenario keys."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection

from harness.errors import ScenarioError
from harness.media.adapt import UplinkAdaptation
from harness.media.simulcast import LAYERS, SimulcastEncoder, layer_of, layers_for, munge_offer, rid_of, substream
from harness.media.tap import TransitMinima
from harness.media.video import VideoSource, read_frame
from harness.scenario.scenario import SIMULCAST_LAYERS, parse_scenario
from harness.systems.layer_choice import LayerChoice, StandingQueue


def test_layer_names_agree_between_scenario_and_media() -> None:
    assert tuple(LAYERS) == SIMULCAST_LAYERS
    assert [layer.rid for layer in layers_for(["f", "q", "h"])] == ["q", "h", "f"]
    assert [substream(r) for r in ("q", "h", "f")] == [0, 1, 2]
    assert [rid_of(i) for i in (0, 1, 2, 3, -1)] == ["q", "h", "f", "?", "?"]
    with pytest.raises(ValueError):
        layers_for(["f", "f"])
    with pytest.raises(ValueError):
        layers_for(["x"])


def test_layer_of_reads_the_size() -> None:
    assert layer_of(640, 640) == "f" and layer_of(320, 640) == "h" and layer_of(160, 640) == "q"
    assert layer_of(480, 640) is None


def test_each_layer_is_encoded_scaled_and_keeps_its_stamp() -> None:
    async def encode() -> dict[str, tuple[int, int]]:
        source = VideoSource(7, width=640, height=360, fps=30)
        encoder = SimulcastEncoder(source, ["q", "h", "f"], bitrate_bps=600_000)
        frame = source.make_frame(3)
        out = {}
        for rid, layer in encoder.encoders.items():
            packet = layer._encode(source.make_frame(3), True)
            assert packet is not None
            import av
            decoder = av.CodecContext.create("libvpx", "r")
            decoded = decoder.decode(packet)[0]
            stamp = read_frame(decoded)
            assert stamp is not None and stamp.stream_id == 7 and stamp.frame_no == 3
            out[rid] = (decoded.width, decoded.height)
        assert frame.width == 640
        return out

    sizes = asyncio.run(encode())
    assert sizes == {"q": (160, 90), "h": (320, 180), "f": (640, 360)}


def test_munged_offer_announces_rids_highest_first_and_drops_ssrcs() -> None:
    async def offer() -> tuple[str, int | None]:
        pc = RTCPeerConnection()
        source = VideoSource(0, width=320, height=180)
        track = SimulcastEncoder(source, ["q", "h", "f"]).track()
        pc.addTransceiver("audio", direction="sendonly")
        pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = munge_offer(pc.localDescription.sdp, [t.sender.track for t in pc.getTransceivers()])
        await pc.close()
        return sdp, track.rid_extension_id  # type: ignore[attr-defined]

    sdp, rid_id = asyncio.run(offer())
    audio, video = sdp.split("m=video")
    assert "a=simulcast" not in audio and "a=ssrc:" in audio
    assert "a=ssrc" not in video
    assert video.index("a=rid:f send") < video.index("a=rid:h send") < video.index("a=rid:q send")
    assert "a=simulcast:send f;h;q" in video
    assert f"a=extmap:{rid_id} urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" in video
    assert rid_id is not None and f"a=extmap:{rid_id} " not in audio


def test_automatic_choice_falls_to_the_lowest_layer_and_comes_back_when_calm() -> None:
    choice = LayerChoice(loss_pct=10.0, window_s=1.0, settle_s=2.0, hold_s=4.0, max_hold_s=8.0)
    assert choice.layer == "f"
    assert choice.observe(0.0, 100, 0) is None
    assert choice.observe(0.5, 97, 3) is None  # random loss under the threshold
    assert choice.observe(1.0, 80, 20) == "q"  # 23 of 200 in the last second: down to the lowest layer ...
    assert "loss" in choice.why
    assert choice.observe(2.0, 30, 5) is None  # the queue drains; still settling
    assert choice.observe(3.1, 5, 0) is None  # too few packets in the window to judge
    assert choice.observe(3.5, 30, 0) is None
    assert choice.observe(4.1, 30, 0) == "h"  # ... and back to the layer below the one that congested, once calm
    assert "back" in choice.why
    assert choice.observe(5.0, 50, 0) is None  # the return holds; the next probe waits for the hold, counted
    assert choice.observe(5.9, 50, 0) is None  # from the last congestion (2.0), not from the return
    assert choice.observe(6.1, 50, 0) == "f"
    assert choice.observe(6.4, 40, 20) == "q"  # the probe meets loss: undone at once, to the lowest layer
    assert "probe failed" in choice.why
    assert choice.observe(8.5, 30, 0) == "h"  # calm for 2 s: back to the layer that held
    assert choice.observe(14.3, 50, 0) is None
    assert choice.observe(14.5, 50, 0) == "f"  # the failed probe doubled the hold: 8 s after it
    assert choice.observe(16.6, 100, 0) is None  # the probe held for 2 s: the hold is short again
    assert choice.observe(40.0, 100, 0) is None  # at the top


def test_automatic_choice_return_that_fails_stays_down_until_a_probe() -> None:
    choice = LayerChoice(settle_s=2.0, hold_s=4.0)
    assert choice.observe(0.0, 80, 20) == "q"
    assert choice.observe(2.1, 30, 0) == "h"
    assert choice.observe(2.3, 10, 5) == "q"  # the link narrowed further: the return is undone at once ...
    assert choice.why.endswith("(return failed)")
    assert choice.observe(4.5, 30, 0) is None  # ... with nothing to return to ...
    assert choice.observe(6.4, 30, 0) == "h"  # ... until the hold (4 s from the last fall) brings a probe


def test_automatic_choice_steps_down_on_a_standing_queue_before_any_loss() -> None:
    choice = LayerChoice(settle_s=2.0, hold_s=4.0, queue_ms=50.0)
    assert choice.observe(0.0, 100, 0, queue_ms=12.0) is None  # jitter, not a queue
    assert choice.observe(0.25, 100, 0, queue_ms=80.0) == "q"  # the link fills up: down before it overflows
    assert choice.why == "queue 80 ms"
    assert choice.observe(0.5, 3, 0, queue_ms=120.0) is None  # settling, even with few packets
    assert choice.observe(2.4, 30, 0, queue_ms=5.0) is None  # the queue at 0.5 s counts as congestion
    assert choice.observe(2.6, 30, 0) == "h"  # calm for 2 s: back
    assert choice.observe(4.5, 100, 0) is None  # the return has not held for 2 s yet
    assert choice.observe(4.7, 100, 0) == "f"  # it has, and it is 4 s since the fall and the queue: probe
    assert choice.observe(4.95, 30, 0, queue_ms=90.0) == "q"  # the probe fills the queue: undone before loss


def test_standing_queue_reads_a_rising_minimum_and_ignores_a_new_time_base() -> None:
    queue = StandingQueue(base_window_s=10.0, jump_ms=1000.0)
    assert queue.observe(0.0, {1: 500.0}) == 0.0
    assert queue.observe(0.25, {1: 503.0, 2: -40.0}) == 3.0  # transit has an unknown constant per stream
    assert queue.observe(0.5, {1: 580.0, 2: -38.0}) == 80.0
    assert queue.observe(0.75, {1: 9000.0}) == 0.0  # a jump: another time base, not a queue
    assert queue.observe(1.0, {1: 9060.0}) == 60.0
    assert queue.observe(11.5, {1: 9100.0}) == 0.0  # the old empty path has left the window
    queue.reset()
    assert queue.observe(12.0, {1: 9200.0}) == 0.0


def test_standing_queue_outlasts_a_key_frame_between_short_ticks() -> None:
    queue = StandingQueue(interval_s=0.25)
    assert queue.observe(0.0, {1: 100.0}) == 0.0
    assert queue.observe(0.1, {1: 100.0}) == 0.0
    assert queue.observe(0.2, {1: 233.0}) == 0.0  # a key frame queued behind itself: the interval still saw
    assert queue.observe(0.3, {1: 200.0}) == 0.0  # a packet on the empty path
    assert queue.observe(0.4, {1: 180.0}) == 80.0  # every packet of the last 250 ms waited: a standing queue


def test_transit_minima_unwrap_rtp_time() -> None:
    minima = TransitMinima(clock_rate=90000)
    minima.add(7, 0xFFFFFF00, 1000.0)
    minima.add(7, 0x000000C2, 1005.0)  # 450 ticks later, across the wrap, and 5 ms later: the same transit
    minima.add(7, 0x000000C2, 1002.0)  # another packet of that frame, earlier: 3 ms less, the minimum
    taken = minima.take()
    assert list(taken) == [7] and taken[7] == pytest.approx(1002.0 - (0xFFFFFF00 + 450) / 90)
    assert minima.take() == {}


def test_scenario_simulcast_keys() -> None:
    base = {"name": "s", "groups": [{"name": "a", "count": 1, "simulcast": ["q", "h", "f"]},
                                    {"name": "b", "count": 1, "prefer_layer": "auto"}]}
    scenario = parse_scenario(base)
    assert scenario.groups[0].simulcast == ("q", "h", "f") and scenario.groups[1].prefer_layer == "auto"
    plain = parse_scenario({"name": "s", "groups": [{"name": "a", "count": 1}]})
    # Scenarios without the keys keep their digest.
    assert "simulcast" not in plain.to_dict()["groups"][0] and "prefer_layer" not in plain.to_dict()["groups"][0]
    for bad in ({"simulcast": ["f"]}, {"simulcast": ["f", "x"]}, {"prefer_layer": "top"},
                {"simulcast": ["h", "f"], "engine": "browser"}):
        with pytest.raises(ScenarioError):
            parse_scenario({"name": "s", "groups": [{"name": "a", "count": 1, **bad}]})


def test_uplink_adaptation_drops_top_layers_and_brings_them_back() -> None:
    rule = UplinkAdaptation([60_000, 140_000, 400_000], loss_pct=10.0, settle_s=2.0, hold_s=5.0, max_hold_s=20.0)
    assert rule.active == 3
    assert rule.report(0.0, 2, 10) is None  # 4 % lost: noise
    assert rule.report(1.0, 2, 64) == 2  # 25 % lost on the top layer: drop it
    assert rule.report(1.5, 2, 64) is None  # about a layer no longer sent
    assert rule.report(2.0, 1, 64) is None  # settling
    assert rule.report(3.1, 1, 64) == 1  # still lossy: drop the next one; the lowest always stays
    assert rule.report(5.5, 0, 128) is None
    assert rule.report(10.4, 0, 0) is None
    assert rule.report(10.6, 0, 0) == 2  # 5 s calm: probe
    assert rule.report(11.0, 1, 64) == 1  # the probe meets loss: dropped at once, hold doubled
    assert rule.report(20.9, 0, 0) is None
    assert rule.report(21.1, 0, 0) == 2
    assert rule.report(23.2, 1, 0) is None  # held 2 s: short hold again
    assert rule.report(26.2, 1, 0) == 3
    # A REMB below what the active layers need counts as trouble; one above them as calm.
    assert rule.remb(40.0, 300_000) == 2
    assert rule.remb(41.0, 1_000_000) is None
