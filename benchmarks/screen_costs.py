"""What a screen share costs: CPU per 1920x1080, 5 fps screen stream, next to a camera stream, in one run.

Prints, for the synthetic screen (``harness.media.screen``) and for the default camera (640x360 at 30 fps),
the per-frame CPU of each step with the shared encoder's VP8 settings (``harness.media.encoder``): rendering a
stamped frame, encoding, decoding, reading the stamp, the sampled PSNR; then what one stream costs a sender
(render + encode) and each receiver that decodes it (decode + read), in % of one core at the stream's frame
rate, the bitrate it came out at, and the ratio screen / camera. The screen run covers one slide change
(the one large frame every 30 s). Figures are CPU time (process_time), so a noisy neighbour inflates them
less than wall time; the ratio, taken in one run, is the figure to compare across machines.

Run: .venv/bin/python benchmarks/screen_costs.py
"""

from __future__ import annotations

import time

import av

from harness.media.encoder import _vp8_context
from harness.media.psnr import frame_psnr
from harness.media.screen import SLIDE_EVERY, ScreenSource
from harness.media.video import VideoSource, read_frame


def cost(source: VideoSource, frames: int, bitrate_bps: int, screen: bool) -> dict[str, float]:
    """Per-frame CPU (ms) of each step for ``frames`` frames of ``source``, and the bitrate (kbit/s)."""
    t0 = time.process_time()
    made = [source.make_frame(n) for n in range(frames)]
    render = (time.process_time() - t0) / frames
    encoder = _vp8_context(source.width, source.height, bitrate_bps)
    t0 = time.process_time()
    packets = [p for frame in made for p in encoder.encode(frame)]
    encode = (time.process_time() - t0) / frames
    size = sum(p.size for p in packets[1:])  # the first key frame aside: a long call amortises it
    decoder = av.CodecContext.create("libvpx", "r")
    t0 = time.process_time()
    decoded = [f for p in packets for f in decoder.decode(p)]
    decode = (time.process_time() - t0) / frames
    t0 = time.process_time()
    stamps = [read_frame(f) for f in decoded]
    read = (time.process_time() - t0) / frames
    sampled = list(zip(decoded, stamps, strict=True))[:: max(1, round(source.fps))]  # one a second
    t0 = time.process_time()
    for frame, stamp in sampled:
        assert stamp is not None
        frame_psnr(frame, stamp, source.width, source.height, screen=screen)
    psnr = (time.process_time() - t0) / len(sampled)
    return {"render": 1000 * render, "encode": 1000 * encode, "decode": 1000 * decode, "read": 1000 * read,
            "psnr": 1000 * psnr, "readable": sum(s is not None for s in stamps) / frames,
            "kbps": size * 8 / ((frames - 1) / source.fps) / 1000, "fps": source.fps}


def main() -> None:
    rows = {
        "screen 1920x1080@5": cost(ScreenSource(1, 1920, 1080, fps=5), SLIDE_EVERY + 10, 1_500_000, True),
        "camera 640x360@30": cost(VideoSource(2, 640, 360, fps=30), 150, 500_000, False),
    }
    print(f"{'stream':>20} {'render':>7} {'encode':>7} {'decode':>7} {'read':>6} {'psnr':>6} {'readable':>8} "
          f"{'kbit/s':>7} {'send %core':>10} {'recv %core':>10}")
    shares = {}
    for name, r in rows.items():
        send = (r["render"] + r["encode"]) * r["fps"] / 10  # ms per frame x frames per s / 1000 ms x 100 %
        recv = (r["decode"] + r["read"]) * r["fps"] / 10 + r["psnr"] / 10  # PSNR: one frame a second
        shares[name] = (send, recv)
        print(f"{name:>20} {r['render']:7.2f} {r['encode']:7.2f} {r['decode']:7.2f} {r['read']:6.3f} "
              f"{r['psnr']:6.2f} {r['readable']:8.2f} {r['kbps']:7.0f} {send:10.1f} {recv:10.1f}")
    (ss, sr), (cs, cr) = shares.values()
    print(f"(per-frame columns in ms of CPU) screen / camera: sender {ss / cs:.2f}x, receiver {sr / cr:.2f}x")


if __name__ == "__main__":
    main()
