"""No bandwidth estimate at the load generator's receivers: the one place that turns off aiortc's REMB.

aiortc's video receiver runs a receive-side bandwidth estimator (``RemoteBitrateEstimator``: an inter-arrival
filter and overuse detector fed with every packet's abs-send-time) and sends its estimate as REMB. confbench's
publishers send at the scenario's fixed bitrate and ignore REMB (``harness.media.encoder``), so for a
synthetic participant the estimate is work without a reader, and it was about 30 % of a media host's
receive path (``benchmarks/participants_per_core.py``). :func:`install` removes the estimator from every
receiver created afterwards in this process, and removes ``goog-remb`` from the feedback aiortc offers and
accepts, so that the session description says truthfully that no REMB will come. Loss, jitter, NACK, PLI
and receiver reports are unchanged. Remove this module together with the fixed-bitrate policy.

:func:`estimate` gives one receiver its estimator back, for an SFU that chooses a subscriber's simulcast layer
from REMB (LiveKit, ``prefer_layer = "auto"``); a stream on the lean receive path (``harness.rtc.lean_receiver``)
still sends none.
"""

from __future__ import annotations

from typing import Any

from aiortc.codecs import CODECS
from aiortc.rtcrtpreceiver import RTCRtpReceiver

__all__ = ["estimate", "install"]

_installed = False


def install() -> None:
    """Receivers created from now on in this process estimate no bandwidth and offer no REMB (idempotent)."""
    global _installed
    if _installed:
        return
    for codec in CODECS["video"]:
        codec.rtcpFeedback = [fb for fb in codec.rtcpFeedback if fb.type != "goog-remb"]
    original = RTCRtpReceiver.__init__

    def init(self: RTCRtpReceiver, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self._RTCRtpReceiver__remote_bitrate_estimator = None  # type: ignore[attr-defined]

    RTCRtpReceiver.__init__ = init  # type: ignore[method-assign]
    _installed = True


def estimate(receiver: RTCRtpReceiver) -> None:
    """Let ``receiver`` estimate its bandwidth and send REMB again (aiortc's estimator, fed with the packets'
    abs-send-time when the sender's offer negotiated it, plus the rise on probes of
    :class:`~harness.rtc.probe_estimate.ProbingEstimator`), whatever :func:`install` did."""
    from harness.rtc.probe_estimate import ProbingEstimator

    receiver._RTCRtpReceiver__remote_bitrate_estimator = ProbingEstimator()  # type: ignore[attr-defined]
