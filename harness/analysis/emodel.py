"""Audio quality as a MOS from the E-model (ITU-T G.107), from delay, jitter and packet loss.

R = Ro − Is − Id − Ie,eff + A, then R → MOS (G.107 Annex B). Every parameter not derived from the
measurement keeps G.107's default value, which gives Ro = 94.77 and Is = 1.43 (and R = 93.2, MOS 4.41,
for a perfect connection). From the measurement:

- **Delay.** ``Id`` (G.107 §7.3) from the one-way mouth-to-ear delay Ta, used for T (talker echo, with the
  default TELR 65 dB) and twice for Tr (listener echo, default WEPL 110 dB): Idte + Idle + Idd. Ta is the
  measured audio latency of the stream (pulse sent → pulse decoded at the receiver, so network, jitter
  buffer and codec are in it) plus twice the RTP jitter: the playout delay an adaptive jitter buffer adds to
  absorb that jitter (aiortc's buffer is fixed, so the measured latency does not include it).
- **Loss.** ``Ie,eff = Ie + (95 − Ie) · Ppl / (Ppl / BurstR + Bpl)`` (§7.4) with the stream's RTP packet
  loss (%) as Ppl and BurstR = 1: the receiver's statistics count lost packets, not their pattern, so loss
  is taken as random (bursty loss therefore scores somewhat too well).

Opus has no entry in ITU-T G.113 Appendix I, which lists Ie and Bpl per codec. The values used
(:data:`OPUS_IE`, :data:`OPUS_BPL`): **Ie = 0**, because Opus at the bitrates WebRTC uses (32 kbit/s and more
for speech) is transparent within the narrowband E-model (its reference is G.711, Ie = 0; the E-model cannot
credit a wider audio band, G.107.1 would); **Bpl = 25.1**, G.113's value for G.711 *with* packet loss
concealment under random loss, because every WebRTC endpoint runs Opus's own concealment, which is at least
as good as G.711 Appendix I's. Both are named constants here so that another choice is one line.
"""

from __future__ import annotations

import math

__all__ = ["OPUS_BPL", "OPUS_IE", "audio_mos", "delay_impairment", "mos_from_r", "r_factor"]

OPUS_IE = 0.0
"""Equipment impairment factor used for Opus (see the module docstring for why)."""
OPUS_BPL = 25.1
"""Packet-loss robustness factor used for Opus (G.113's G.711 with PLC, random loss)."""

RO = 94.77
"""Basic signal-to-noise ratio with G.107's default parameters."""
IS = 1.43
"""Simultaneous impairment factor with G.107's default parameters."""
_TELR = 65.0  # talker echo loudness rating, dB (default)
_WEPL = 110.0  # weighted echo path loss, dB (default)
_ROE = 94.77  # -1.5 (No - 2) with the default noise No = -61.18 dBm0p
_MT = 100.0  # Idd's delay threshold mT, ms (default)


def delay_impairment(ta_ms: float) -> float:
    """``Id`` for a one-way (mouth-to-ear) delay ``ta_ms``: talker echo, listener echo and absolute delay."""
    t = max(ta_ms, 0.0)
    terv = _TELR - 40 * math.log10((1 + t / 10) / (1 + t / 150)) + 6 * math.exp(-0.3 * t * t)
    re = 80 + 2.5 * (terv - 14)
    idte = ((_ROE - re) / 2 + math.sqrt((_ROE - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-t))
    rle = 10.5 * (_WEPL + 7) * (2 * t + 1) ** -0.25
    idle = (RO - rle) / 2 + math.sqrt((RO - rle) ** 2 / 4 + 169)
    idd = 0.0
    if t > _MT:
        x = math.log10(t / _MT) / math.log10(2)
        idd = 25 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    return idte + idle + idd


def r_factor(delay_ms: float, loss_pct: float, ie: float = OPUS_IE, bpl: float = OPUS_BPL,
             burst_ratio: float = 1.0) -> float:
    """The transmission rating R for a one-way delay and a packet loss (%)."""
    ppl = min(max(loss_pct, 0.0), 100.0)
    ie_eff = ie + (95 - ie) * ppl / (ppl / burst_ratio + bpl)
    return RO - IS - delay_impairment(delay_ms) - ie_eff


def mos_from_r(r: float) -> float:
    """G.107 Annex B: the estimated mean opinion score (1 to 4.5) for a rating R."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def audio_mos(latency_ms: float, jitter_ms: float, loss_pct: float) -> float:
    """MOS of an audio stream from its measured latency, RTP jitter (ms) and packet loss (%)."""
    return mos_from_r(r_factor(latency_ms + 2 * max(jitter_ms, 0.0), loss_pct))
