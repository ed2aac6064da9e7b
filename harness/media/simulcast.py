"""Simulcast sending: several encodings of one camera on one m-line, told apart by RID, as browsers send them.

aiortc sends one encoding per sender and knows nothing of ``a=rid``/``a=simulcast``. This module is the one
place that works around it, in three parts:

- :class:`SimulcastEncoder`: one :class:`~harness.media.encoder.SharedVideoEncoder` per layer, each scaling
  the source's frames down by the layer's factor before encoding (stamps are in units of the frame width,
  :mod:`harness.media.stamp`, so every layer reads). Each layer is encoded once and shared between publishers
  like a single stream is.
- :func:`munge_offer`: adds to the video m-line of aiortc's offer what a browser's offer carries for
  simulcast: the ``rtp-stream-id`` header extension, one ``a=rid:<rid> send`` per layer and
  ``a=simulcast:send``, and removes the SSRC lines (the SFU learns each layer's SSRC from the RID of its
  packets, as with a browser). aiortc keeps its own, unmunged, description; only the SFU sees the munged one.
- ``harness.media.packetize.LayerSender`` (where the packetized send loop lives): the RTP of one layer
  on the sender's transport, with its own SSRC and sequence numbers, MID and RID on every packet, and
  answers to the NACKs and PLIs the SFU sends for that SSRC (registered in aiortc's RTCP router). The top
  layer uses the sender's own SSRC, so aiortc's sender reports and RTT still describe it; the lower layers
  send sender reports of their own once a second (LiveKit maps timestamps between layers through them when it
  switches a subscriber; without them it refuses the switch).

Layer names follow the browsers' and Janus demos' habit: ``q`` (quarter size), ``h`` (half), ``f`` (full).
The receiver tells which layer it got from the decoded width (:func:`layer_of`). Remove this module when
aiortc can send simulcast.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import av
from av.video.reformatter import VideoReformatter

from .encoder import SharedVideoEncoder
from .fanout import FanOutTrack
from .packetize import RID_URI
from .video import VideoSource

__all__ = ["LAYERS", "Layer", "LayerSize", "SimulcastEncoder", "layer_of", "layers_for", "munge_offer", "rid_of",
           "substream"]

log = logging.getLogger(__name__)



@dataclass(frozen=True, slots=True)
class Layer:
    """One encoding: its RID, how much smaller than the camera, and its share of the top layer's bitrate."""

    rid: str
    scale: int
    bitrate_share: float


LAYERS: dict[str, Layer] = {
    # Shares close to what Chrome gives its three layers (about 1/16, 1/4 and all of the top rate would
    # follow the pixel count; browsers give the small layers more per pixel, as here).
    "q": Layer("q", 4, 0.15),
    "h": Layer("h", 2, 0.35),
    "f": Layer("f", 1, 1.0),
}
"""The layers a group may list in ``simulcast``, lowest first."""

MIN_LAYER_BPS = 30_000


@dataclass(frozen=True, slots=True)
class LayerSize:
    """What one layer of a publisher's track carries: its size and target bitrate (announced by signalling
    that wants them, e.g. LiveKit's ``AddTrackRequest.layers``)."""

    rid: str
    width: int
    height: int
    bitrate_bps: int


def layers_for(rids: Sequence[str]) -> list[Layer]:
    """The layers named by ``rids``, lowest first; raises ``ValueError`` for an unknown or repeated name."""
    unknown = [r for r in rids if r not in LAYERS]
    if unknown or len(set(rids)) != len(rids) or not rids:
        raise ValueError(f"simulcast takes distinct layers among {', '.join(LAYERS)}, got {list(rids)}")
    return sorted((LAYERS[r] for r in rids), key=lambda layer: -layer.scale)


def layer_of(width: int, full_width: int) -> str | None:
    """The layer whose size a decoded ``width`` is, for a camera ``full_width`` wide (None: no layer's)."""
    for layer in LAYERS.values():
        if abs(width - _scaled(full_width, layer.scale)) <= 2:
            return layer.rid
    return None


def substream(rid: str) -> int:
    """The index an SFU that numbers layers from the lowest (Janus's ``substream``) gives layer ``rid``,
    for a publisher sending every layer of :data:`LAYERS` (a publisher sending fewer: the SFU keeps to the
    nearest layer it has)."""
    if rid not in LAYERS:
        raise ValueError(f"no simulcast layer {rid!r} (layers: {', '.join(LAYERS)})")
    return list(LAYERS).index(rid)


def rid_of(index: int) -> str:
    """The layer :func:`substream` numbers ``index`` ("?" for an index no layer has)."""
    names = list(LAYERS)
    return names[index] if 0 <= index < len(names) else "?"


def _scaled(size: int, scale: int) -> int:
    return max(16, (size // scale) & ~1)  # even, as yuv420p needs


class ScaledVideoEncoder(SharedVideoEncoder):
    """A shared encoder of a source scaled down by ``scale`` (one simulcast layer)."""

    # A layer must keep to its rate: SFUs and adapting publishers reason with the layers' rates. With the single
    # stream's quantizer cap (56), libvpx overshot a 480x270 camera's layers by 45 % (q), 27 % (h) and 13 % (f)
    # over 9 s of the synthetic source; with VP8's own cap (63), within 5 %.
    vp8_qmax = 63

    def __init__(self, source: VideoSource, codec: str, bitrate_bps: int, scale: int) -> None:
        super().__init__(source, codec=codec, bitrate_bps=bitrate_bps)
        self.scale = scale
        self.task_name = f"{self.task_name}-{scale}"
        # One scaler kept for the stream: ``VideoFrame.reformat`` sets up a new one per frame, which cost 0.64 ms
        # a frame (480x270 to 120x66) against 0.09 ms reused, more than encoding the small layer.
        self._scaler = VideoReformatter()

    def _encode(self, frame: av.VideoFrame, keyframe: bool) -> av.Packet | None:
        if self.scale != 1:
            scaled = self._scaler.reformat(frame, width=_scaled(frame.width, self.scale),
                                           height=_scaled(frame.height, self.scale))
            scaled.pts, scaled.time_base = frame.pts, frame.time_base
            frame = scaled
        return super()._encode(frame, keyframe)


class SimulcastEncoder:
    """Every layer of one camera, each encoded once; :meth:`track` gives one publisher's simulcast track."""

    def __init__(self, source: VideoSource, rids: Sequence[str], codec: str = "VP8",
                 bitrate_bps: int = 500_000, adapt: bool = False) -> None:
        self.layers = layers_for(rids)
        self.adapt = adapt
        """Whether publishers drop top layers on the SFU's loss reports (``harness.media.adapt``)."""
        self.encoders = {layer.rid: ScaledVideoEncoder(
            source, codec, max(MIN_LAYER_BPS, int(bitrate_bps * layer.bitrate_share)), layer.scale)
            for layer in self.layers}

    @property
    def top(self) -> ScaledVideoEncoder:
        """The largest layer's encoder."""
        return self.encoders[self.layers[-1].rid]

    def track(self) -> FanOutTrack[Any]:
        """The top layer's track, carrying in ``layers`` a track of every layer (rid, track), lowest first,
        and in ``layer_sizes`` each layer's :class:`LayerSize`.

        The top layer's track is what aiortc's sender holds; the packetized send loop
        (:mod:`harness.media.packetize`) sends every layer when it finds ``layers``.
        """
        tracks = [(layer.rid, self.encoders[layer.rid].track()) for layer in self.layers]
        top = tracks[-1][1]
        top.layers = tracks  # type: ignore[attr-defined]
        top.rid_extension_id = None  # type: ignore[attr-defined]  # set by munge_offer
        top.layer_sizes = [self.size(layer.rid) for layer in self.layers]  # type: ignore[attr-defined]
        top.adapt_bitrates = (  # type: ignore[attr-defined]
            [self.encoders[layer.rid].bitrate_bps for layer in self.layers] if self.adapt else None)
        original_stop = top.stop

        def stop() -> None:
            for _, track in tracks[:-1]:
                track.stop()
            original_stop()

        top.stop = stop  # type: ignore[method-assign]
        return top

    def size(self, rid: str) -> LayerSize:
        """Layer ``rid``'s size and target bitrate (what an SFU's signalling may want announced, e.g. LiveKit's)."""
        encoder = self.encoders[rid]
        source = encoder.video_source
        return LayerSize(rid, _scaled(source.width, encoder.scale), _scaled(source.height, encoder.scale),
                         encoder.bitrate_bps)

    @property
    def dropped(self) -> int:
        """Packets dropped before any sender, summed over the layers."""
        return sum(e.fanout.dropped for e in self.encoders.values())

    async def stop(self) -> None:
        """Stop every layer's encoder."""
        for encoder in self.encoders.values():
            await encoder.stop()


# -- the session description ------------------------------------------------------------------------------
_EXTMAP = re.compile(r"^a=extmap:(\d+)")


def munge_offer(sdp: str, tracks: Sequence[Any]) -> str:
    """``sdp`` (aiortc's offer) with each simulcast track's video m-line announcing its layers by RID.

    ``tracks`` are the offer's tracks in m-line order; those with ``layers`` (from :meth:`SimulcastEncoder.track`)
    are munged, and learn the RID extension's id (``rid_extension_id``) the packets must carry.
    """
    lines = sdp.split("\r\n")
    used = {int(m.group(1)) for line in lines if (m := _EXTMAP.match(line))}
    rid_id = next(i for i in range(1, 15) if i not in used)
    sections: list[list[str]] = [[]]
    for line in lines:
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    out = sections[0]
    media = sections[1:]
    for section, track in zip(media, list(tracks) + [None] * (len(media) - len(tracks)), strict=False):
        layers = getattr(track, "layers", None)
        if not layers or not section[0].startswith("m=video"):
            out += section
            continue
        track.rid_extension_id = rid_id
        kept = [line for line in section if not line.startswith(("a=ssrc:", "a=ssrc-group:"))]
        last_extmap = max((i for i, line in enumerate(kept) if line.startswith("a=extmap:")), default=len(kept) - 1)
        kept.insert(last_extmap + 1, f"a=extmap:{rid_id} {RID_URI}")
        # Highest first, as Chrome lists its encodings: Janus takes the order of a=simulcast as given.
        rids = [rid for rid, _ in reversed(layers)]
        tail = [f"a=rid:{rid} send" for rid in rids] + [f"a=simulcast:send {';'.join(rids)}"]
        if kept and kept[-1] == "":
            kept = kept[:-1] + tail + [""]
        else:
            kept += tail
        out += kept
    return "\r\n".join(out)
