"""How hard a JPEG was compressed, read from its quantisation table, and when that matters.

JPEG compresses 8×8-pixel blocks. A camera at 1 µm/px hands the model blocks that the rescale to
its 4 µm/px averages four to one, and its compression costs nothing measurable (quality 30: 97–98 %
of decisions kept). At the model's own scale nothing averages it: on 27 fields of the validation
slides and 57 of training patients' slides (every gate, 2026-11-30) JPEG quality 95 / 85 / 70 / 50 /
30 kept 96 / 91 / 86 / 83 / 81 % and 94 / 89 / 83 / 80 / 76 % of the decisions, and no gate saw it
(benign called IDC and IDC called benign alike); at 2 µm/px quality 30 kept 93 / 91 %.

:func:`jpeg_quality` estimates the quality setting (libjpeg's 1–100 scale) from the luminance
quantisation table in the file's header, without decoding; :func:`jpeg_warning` says what to do.
"""
from __future__ import annotations

from typing import Optional

#: the luminance quantisation table of the JPEG standard (ITU-T T.81, Annex K, Table K.1), in zigzag
#: order as a DQT segment stores it; libjpeg scales it by its quality setting
_STANDARD_LUMA_ZIGZAG = (16, 11, 12, 14, 12, 10, 16, 14, 13, 14, 18, 17, 16, 19, 24, 40, 26, 24, 22, 22, 24, 49, 35,
                         37, 29, 40, 58, 51, 61, 60, 57, 51, 56, 55, 64, 72, 92, 78, 64, 68, 87, 69, 55, 56, 80, 109,
                         81, 87, 95, 98, 103, 104, 103, 62, 77, 113, 121, 112, 100, 120, 92, 101, 103, 99)

#: µm per pixel from which a JPEG's blocks reach the model unaveraged (the coarsest camera scale at
#: which compression was measured harmless is 1 µm/px; at 2 µm/px quality 30 kept 91–93 %)
UNAVERAGED_FROM_UM_PER_PX = 1.5

#: the lowest quality harmless at the model's scale (95 kept 94–96 % of decisions, 85 kept 89–91 %)
LEAST_QUALITY = 90

#: bytes of a file's start read for its header (quantisation tables come before the image data)
HEADER_BYTES = 1 << 16


def jpeg_quality(data: bytes) -> Optional[int]:
    """libjpeg's quality setting (1–100) that gives the luminance quantisation table (table 0) of the
    JPEG whose first bytes are ``data``; None when ``data`` is not a JPEG or holds no such table before
    its image data. Tables that are not a scaled standard table (a camera's own) get the quality of the
    standard table with the same mean step."""
    if not data.startswith(b"\xff\xd8"):
        return None
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
            continue
        if marker == 0xDA:  # start of scan: the tables are all before it
            return None
        length = int.from_bytes(data[at + 2:at + 4], "big")
        if length < 2:
            return None
        if marker == 0xDB:
            table = _luma_table(data[at + 4:at + 2 + length])
            if table is not None:
                return _quality_of(table)
        at += 2 + length
    return None


def _luma_table(segment: bytes) -> Optional[tuple[int, ...]]:
    """Table 0's 64 steps from a DQT segment's body (which may hold several tables), or None."""
    at = 0
    while at < len(segment):
        precision, table_id = segment[at] >> 4, segment[at] & 0x0F
        size = 128 if precision else 64
        body = segment[at + 1:at + 1 + size]
        if len(body) < size:
            return None
        if table_id == 0:
            return tuple(int.from_bytes(body[i:i + 2], "big") for i in range(0, 128, 2)) if precision else tuple(body)
        at += 1 + size
    return None


def _quality_of(table: tuple[int, ...]) -> int:
    """The quality whose libjpeg scaling of the standard table has ``table``'s mean step (percent scale
    ``s``: quality 100 - s / 2 from 50 up, 5000 / s below)."""
    scale = 100.0 * sum(table) / sum(_STANDARD_LUMA_ZIGZAG)
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return int(min(100, max(1, round(quality))))


def changes_decisions(quality: int, um_per_px: float) -> bool:
    """Whether JPEG of ``quality`` at ``um_per_px`` µm per pixel reaches the model unaveraged and hard enough
    to change its decisions: below :data:`LEAST_QUALITY` at :data:`UNAVERAGED_FROM_UM_PER_PX` or coarser."""
    return quality < LEAST_QUALITY and um_per_px >= UNAVERAGED_FROM_UM_PER_PX


def jpeg_warning(what: str, quality: int, um_per_px: float, example: str) -> Optional[str]:
    """What to say about ``what`` ("3 image(s)", "the folder's images") stored as JPEG of ``quality`` at
    ``um_per_px`` µm per pixel (``example``: one of them, named); None when that compression is harmless
    (quality :data:`LEAST_QUALITY` or more, or finer than :data:`UNAVERAGED_FROM_UM_PER_PX`)."""
    if not changes_decisions(quality, um_per_px):
        return None
    return (f"{what} are JPEG compressed at quality {quality} (e.g. {example}) at {um_per_px:g} um per pixel, "
            "where nothing averages its 8x8-pixel blocks away: at the model's scale JPEG of quality 85 changed "
            "about 1 decision in 10 and quality 70 about 1 in 6, with no other sign; give lossless images (PNG or "
            "TIFF), or save them at a finer scale (a camera's full resolution), where its blocks are averaged")
