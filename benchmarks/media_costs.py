"""What one participant's media costs on this machine: per-frame CPU of each step, and what follows.

Prints, at 640x360 and 1280x720 (VP8, aiortc's encoder settings): rendering a stamped frame, VP8 encode,
VP8 decode, reading a stamp; then how many encodes and decodes one core sustains at 30 fps, and what a
full-mesh call of N participants needs (N x (N-1) encodes and decodes without a shared encoder, N encodes and
N x (N-1) decodes with one). Figures are CPU time (process_time), so a noisy neighbour inflates them less
than wall time.

Run: .venv/bin/python benchmarks/media_costs.py
"""

from __future__ import annotations

import time
from fractions import Fraction

from aiortc.codecs import get_decoder, get_encoder
from aiortc.codecs.vpx import Vp8Decoder  # noqa: F401 - imported to make sure VP8 is available
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from harness.media.video import VideoSource, read_frame

FRAMES = 90


def cost(width: int, height: int) -> dict[str, float]:
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    source = VideoSource(1, width=width, height=height, fps=30)
    frames = []
    t0 = time.process_time()
    for n in range(FRAMES):
        frames.append(source.make_frame(n))
    render = (time.process_time() - t0) / FRAMES
    encoder = get_encoder(codec)
    payload_sets = []
    t0 = time.process_time()
    for n, frame in enumerate(frames):
        frame.pts = n * 3000
        frame.time_base = Fraction(1, 90000)
        payloads, ts = encoder.encode(frame, force_keyframe=(n == 0))
        payload_sets.append((payloads, ts))
    encode = (time.process_time() - t0) / FRAMES
    decoder = get_decoder(codec)
    depay = __import__("aiortc.codecs.vpx", fromlist=["vp8_depayload"]).vp8_depayload
    decoded = []
    t0 = time.process_time()
    for payloads, ts in payload_sets:
        data = b"".join(depay(p) for p in payloads)
        decoded.extend(decoder.decode(JitterFrame(data=data, timestamp=ts)))
    decode = (time.process_time() - t0) / FRAMES
    t0 = time.process_time()
    ok = sum(read_frame(f) is not None for f in decoded)
    read = (time.process_time() - t0) / max(len(decoded), 1)
    return {"render": render, "encode": encode, "decode": decode, "read": read, "readable": ok / len(decoded)}


def main() -> None:
    print(f"{'size':>10} {'render ms':>10} {'encode ms':>10} {'decode ms':>10} {'read ms':>8} {'readable':>9}")
    results = {}
    for w, h in ((640, 360), (1280, 720)):
        c = cost(w, h)
        results[(w, h)] = c
        print(f"{w}x{h:>5} {c['render'] * 1e3:10.2f} {c['encode'] * 1e3:10.2f} {c['decode'] * 1e3:10.2f} "
              f"{c['read'] * 1e3:8.3f} {c['readable']:9.0%}")
    c = results[(640, 360)]
    per_stream_send = 30 * (c["render"] / 1 + c["encode"])  # core-seconds per second, one encoded stream
    per_stream_recv = 30 * (c["decode"] + c["read"])
    print(f"\n640x360@30: one encoded stream costs {per_stream_send:.0%} of a core, one decoded stream "
          f"{per_stream_recv:.0%}; encode/decode ratio {c['encode'] / c['decode']:.1f}")
    print(f"{'mesh N':>6} {'per-peer encoders (cores)':>26} {'shared encoder (cores)':>23}")
    for n in (2, 3, 4, 6):
        separate = n * (n - 1) * 30 * c["encode"] + n * 30 * c["render"] + n * (n - 1) * per_stream_recv
        shared = n * 30 * (c["encode"] + c["render"]) + n * (n - 1) * per_stream_recv
        print(f"{n:>6} {separate:26.2f} {shared:23.2f}")


if __name__ == "__main__":
    main()
