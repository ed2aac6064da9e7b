"""The frame stamp: a block code in the luma plane that survives VP8/H.264 compression.

Every synthetic video frame carries, at its top, a band of 32 x 4 square cells, each dark (luma 32) or light
(luma 224). The 128 cells hold 16 bits of stream id, 32 bits of frame number, 48 bits of capture time (UNIX
microseconds modulo 2**48) and a CRC-32 of those 12 bytes, most significant bit first, row by row.

Geometry is in units of the frame width (a cell is ``width / 32`` pixels square, the band ``width / 8`` rows),
so a frame that an encoder or an SFU scaled, keeping its aspect ratio, still reads. A reader averages the
central half of each cell and thresholds at 128. When the checksum fails and at most four cells read
ambiguously (their mean far from both levels), it tries those cells flipped and accepts the one repair that
passes the checksum (see :func:`_correct` for why that cannot produce a wrong stamp in practice). Otherwise it
returns ``None``: a stamp is read exactly or not at all.

A mid-grey guard strip between the cells and the picture below was tried and made no measurable difference:
reading only the central half of each cell already keeps clear of ringing and the deblocking filter.
"""

from __future__ import annotations

import functools
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["COLUMNS", "ROWS", "Stamp", "band_height", "read_stamp", "write_stamp"]

COLUMNS = 32
"""Cells per row of the band."""
ROWS = 4
"""Rows of cells in the band."""
DARK = 32
"""Luma of a 0 bit (well inside video range, so a limited-range conversion cannot clip it)."""
LIGHT = 224
"""Luma of a 1 bit."""
THRESHOLD = 128
"""A cell whose central mean is at least this reads as 1."""

# Only the middle of each cell is read: its edges are where ringing and deblocking smear neighbouring cells.
_CORE = 0.5
# A cell whose mean is within this of the threshold is doubtful (levels sit 96 away from it when clean).
_DOUBT = 64
# At most this many doubtful cells are tried flipped (2**4 - 1 CRC checks): well below the code's distance.
_MAX_FLIPS = 4
# At most this many sample points per cell side; more adds cost but no robustness once cells are large.
_MAX_SAMPLES = 6

_STREAM_ID_MAX = 0xFFFF
_FRAME_NO_MAX = 0xFFFF_FFFF
_CAPTURE_MOD = 1 << 48
_PAYLOAD = struct.Struct(">HI")  # stream id, frame number; the 48-bit time follows as 6 bytes
_BITS = COLUMNS * ROWS


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a frame carries: which stream, which frame, and when it was captured.

    ``capture_us`` is the capture wall-clock time in microseconds modulo 2**48 (about 8.9 years); use
    :meth:`capture_time` with any nearby reference time to get the full UNIX time back.
    """

    stream_id: int
    frame_no: int
    capture_us: int

    def __post_init__(self) -> None:
        for name, value, top in (
            ("stream_id", self.stream_id, _STREAM_ID_MAX),
            ("frame_no", self.frame_no, _FRAME_NO_MAX),
            ("capture_us", self.capture_us, _CAPTURE_MOD - 1),
        ):
            # bool is an int subclass; a True stream id is a bug, not a value
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"Stamp.{name} must be an int, not {type(value).__name__}")
            if not 0 <= value <= top:
                raise ValueError(f"Stamp.{name} must be in 0..{top}, got {value}")

    @classmethod
    def at(cls, stream_id: int, frame_no: int, t: float) -> Stamp:
        """The stamp of frame ``frame_no`` of stream ``stream_id`` captured at UNIX time ``t`` (seconds)."""
        return cls(stream_id, frame_no, round(t * 1_000_000) % _CAPTURE_MOD)

    def capture_time(self, reference: float) -> float:
        """The capture time as UNIX seconds, taking the full value from ``reference``.

        ``reference`` is any time within about 4.4 years of the capture (the receiver's clock will do): the
        stamp keeps only the low 48 bits of the microsecond count, and the result is the unwrapped value
        closest to ``reference``.
        """
        ref_us = round(reference * 1_000_000)
        half = _CAPTURE_MOD // 2
        delta = (self.capture_us - ref_us + half) % _CAPTURE_MOD - half
        return (ref_us + delta) / 1_000_000

    def to_bytes(self) -> bytes:
        """The 16 bytes written into the band: 12 payload bytes and their CRC-32, big-endian."""
        payload = _PAYLOAD.pack(self.stream_id, self.frame_no) + self.capture_us.to_bytes(6, "big")
        return payload + zlib.crc32(payload).to_bytes(4, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> Stamp | None:
        """Parse 16 band bytes; ``None`` when the CRC does not match."""
        if len(data) != _BITS // 8:
            raise ValueError(f"a stamp is {_BITS // 8} bytes, got {len(data)}")
        payload, crc = data[:12], int.from_bytes(data[12:], "big")
        if zlib.crc32(payload) != crc:
            return None
        stream_id, frame_no = _PAYLOAD.unpack_from(payload)
        return cls(stream_id, frame_no, int.from_bytes(payload[6:], "big"))


def band_height(width: int) -> int:
    """Rows at the top of a ``width``-pixel-wide frame that the band occupies (``width / 8``, rounded)."""
    if width < COLUMNS:
        raise ValueError(f"a frame must be at least {COLUMNS} pixels wide to carry a stamp, got {width}")
    return _cell_edge(ROWS, width)


def write_stamp(y: npt.NDArray[np.uint8], stamp: Stamp) -> None:
    """Draw ``stamp`` into the top of the luma plane ``y`` (H x W uint8, modified in place).

    The frame must be tall enough for the band (``band_height(W)`` rows); ``y`` may be a strided view, e.g. of
    a plane whose line size exceeds its width.
    """
    height, width = _check_plane(y)
    band = band_height(width)
    if height < band:
        raise ValueError(f"a {width}-wide frame needs {band} rows for the stamp, this one has {height}")
    row_counts, col_counts = _write_counts(width)
    bits = np.unpackbits(np.frombuffer(stamp.to_bytes(), dtype=np.uint8)).reshape(ROWS, COLUMNS)
    levels = np.where(bits.astype(bool), LIGHT, DARK).astype(np.uint8)
    # Widening the 4 x 32 cell grid row first keeps both repeats small (about 6 µs at 640 px).
    y[:band] = np.repeat(np.repeat(levels, col_counts, axis=1), row_counts, axis=0)


def read_stamp(y: npt.NDArray[np.uint8]) -> Stamp | None:
    """Read the stamp from the top of the luma plane ``y`` (H x W uint8, H may be just the band).

    Returns ``None`` when the frame has no readable stamp (too small, damaged, or never stamped); a stamp that
    is returned passed its CRC-32.
    """
    height, width = _check_plane(y)
    if width < COLUMNS:
        return None
    rows, cols = _read_points(width)
    if height <= rows[-1]:
        return None
    samples = y[rows][:, cols].reshape(ROWS, rows.size // ROWS, COLUMNS, cols.size // COLUMNS)
    count = (rows.size // ROWS) * (cols.size // COLUMNS)
    # Integer sums compared with threshold x count: no float pass over the samples.
    sums = samples.sum(axis=(1, 3), dtype=np.int64).reshape(-1)
    bits = sums >= THRESHOLD * count
    word = int.from_bytes(np.packbits(bits).tobytes(), "big")
    stamp = Stamp.from_bytes(word.to_bytes(16, "big"))
    if stamp is not None:
        return stamp
    return _correct(word, np.abs(sums - THRESHOLD * count) < _DOUBT * count)


def _correct(word: int, doubtful: npt.NDArray[np.bool_]) -> Stamp | None:
    """Soft-decision repair: try flipping the cells that read close to the threshold.

    VP8 (libvpx with aiortc's settings: temporal denoiser plus encode breakout) now and then leaves part of a
    macroblock from the previous frame, so a cell reads half old, half new: its mean lands mid-way, not on the
    wrong level. Only such doubtful cells are flipped, at most ``_MAX_FLIPS`` of them, and the repaired word
    must be the only candidate that passes the CRC. The code has minimum distance 7 (no error pattern of up
    to 6 bits passes CRC-32 over these 128 bits; ``tests/test_stamp.py`` checks it), so a wrong stamp would
    need at least 3 cells confidently on the wrong level besides the flipped ones, and would then still have
    to hit a 1 in 2**32 checksum.
    """
    cells = np.flatnonzero(doubtful)
    if not 0 < cells.size <= _MAX_FLIPS:
        return None  # clean-looking but wrong, or too damaged to be worth guessing
    masks = [1 << (_BITS - 1 - int(c)) for c in cells]
    found: Stamp | None = None
    for subset in range(1, 1 << len(masks)):
        flipped = word
        for i, mask in enumerate(masks):
            if subset >> i & 1:
                flipped ^= mask
        candidate = Stamp.from_bytes(flipped.to_bytes(16, "big"))
        if candidate is not None:
            if found is not None:
                return None  # two repairs fit: refuse to choose
            found = candidate
    return found


def _check_plane(y: npt.NDArray[np.uint8]) -> tuple[int, int]:
    if y.ndim != 2 or y.dtype != np.uint8:
        raise ValueError(f"expected an H x W uint8 luma plane, got {y.dtype} of shape {y.shape}")
    return int(y.shape[0]), int(y.shape[1])


def _cell_edge(cells: float, width: int) -> int:
    """The pixel index where ``cells`` cell widths end, in a frame ``width`` pixels wide."""
    return round(cells * width / COLUMNS)


@functools.lru_cache(maxsize=32)
def _write_counts(width: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Pixel heights of the cell rows and pixel widths of the cell columns."""
    row_edges = [_cell_edge(r, width) for r in range(ROWS + 1)]
    col_edges = [_cell_edge(c, width) for c in range(COLUMNS + 1)]
    return np.diff(row_edges).astype(np.intp), np.diff(col_edges).astype(np.intp)


@functools.lru_cache(maxsize=32)
def _read_points(width: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Sample rows and columns inside the core of every cell, grouped cell by cell (same count per cell)."""
    cell = width / COLUMNS
    lo, hi = (1 - _CORE) / 2, (1 + _CORE) / 2
    # Equal counts per cell let the reader reshape instead of looping; at least one point per cell.
    per_cell = max(1, min(_MAX_SAMPLES, int(cell * _CORE)))
    offsets = lo + (hi - lo) * (np.arange(per_cell) + 0.5) / per_cell
    starts = np.arange(COLUMNS) * cell
    cols = np.floor(starts[:, None] + offsets[None, :] * cell).astype(np.intp).reshape(-1)
    rows = np.floor(starts[:ROWS, None] + offsets[None, :] * cell).astype(np.intp).reshape(-1)
    return rows, np.minimum(cols, width - 1)
