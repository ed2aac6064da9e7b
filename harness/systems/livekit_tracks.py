"""What a LiveKit participant says about its tracks: the announcement of a published track (with its simulcast
layers) and the qualities by which LiveKit names layers. Kept apart from :mod:`harness.systems.livekit` (the
signalling and peer connections), which uses them.
"""

from __future__ import annotations

from aiortc import MediaStreamTrack
from livekit.protocol import models, rtc

from harness.media.simulcast import LAYERS

__all__ = ["QUALITY", "add_track_request"]

#: LiveKit's quality of each simulcast layer (``harness.media.simulcast``): a publisher announces its layers
#: with them, a subscriber asks for one (``UpdateTrackSettings.quality``, the highest the SFU may forward).
QUALITY = {"q": models.LOW, "h": models.MEDIUM, "f": models.HIGH}
assert set(QUALITY) == set(LAYERS)


def add_track_request(track: MediaStreamTrack, video_codec: str) -> rtc.AddTrackRequest:
    """The announcement of one track; a simulcast video track (``harness.media.simulcast``) declares its layers
    as LiveKit's JavaScript SDK does: quality, size and bitrate per layer, also per codec (``simulcast_codecs``,
    which tells the server the layers' codec before the offer comes). The server learns each layer's RID from
    the offer's ``a=simulcast`` and matches the layers to the qualities (q, h, f: low, medium, high)."""
    video = track.kind == "video"
    request = rtc.AddTrackRequest(cid=track.id, name=track.kind, type=models.VIDEO if video else models.AUDIO,
                                  source=models.CAMERA if video else models.MICROPHONE, disable_dtx=True,
                                  disable_red=True)
    sizes = getattr(track, "layer_sizes", None)
    if video and sizes:
        layers = [models.VideoLayer(quality=QUALITY[s.rid], width=s.width, height=s.height, bitrate=s.bitrate_bps,
                                    rid=s.rid) for s in sizes]
        request.width, request.height = sizes[-1].width, sizes[-1].height
        request.layers.extend(layers)
        request.simulcast_codecs.append(rtc.SimulcastCodec(codec=video_codec.lower(), cid=track.id, layers=layers))
    return request
