"""Image files that hold more than one picture: multi-page TIFF, animated GIF, PNG (APNG) and WebP.

``cv2.imdecode`` gives the first picture of such a file and drops the rest without a word, so a
stack of patches saved as one TIFF, or a clip saved as a GIF, was scored as one image.
:func:`extra_pictures` tells such a file by its bytes (headers only, nothing decoded), so the
reader can say that only the first picture is read.

A camera raw file (DNG, and the TIFF-based raws of camera makers: NEF, PEF, ...) is worse: its first
picture is a small preview of the photo, or the sensor's raw Bayer mosaic, never the photo itself.
:func:`not_the_picture` tells such a file, so it is refused instead of its preview being scored.
"""
from __future__ import annotations

import struct
from typing import Optional

from .imageheaders import TIFF_MAGIC, tiff_entries, tiff_number

#: Pages or frames counted at most (a damaged file's loop of offsets must end).
MAX_COUNT = 10_000


def _tiff_pages(data: bytes) -> int:
    """Pages of a TIFF or BigTIFF (its chain of image file directories), 0 when ``data`` is neither."""
    order, big = TIFF_MAGIC.get(bytes(data[:4]), (None, False))
    if order is None:
        return 0
    word, count, entry = ("Q", 8, 20) if big else ("I", 2, 12)  # offsets; the entry count's bytes; an entry's
    size = struct.calcsize(word)
    offset, pages, seen = struct.unpack(order + word, data[4 + 4 * big:4 + 4 * big + size])[0], 0, set()
    while offset and offset not in seen and offset + count <= len(data) and pages < MAX_COUNT:
        seen.add(offset)
        pages += 1
        entries = struct.unpack(order + ("Q" if big else "H"), data[offset:offset + count])[0]
        after = offset + count + entry * entries
        if after + size > len(data):
            break
        offset = struct.unpack(order + word, data[after:after + size])[0]
    return pages


def _sub_blocks_end(data: bytes, i: int) -> int:
    """The offset after a GIF's chain of data sub-blocks starting at ``i`` (ends with a 0 length)."""
    while i < len(data) and data[i]:
        i += data[i] + 1
    return i + 1


def _gif_frames(data: bytes) -> int:
    """Pictures of a GIF (its image descriptors), 0 when ``data`` is no GIF."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        return 0
    flags = data[10]
    i = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while i < len(data) and frames < MAX_COUNT:
        block = data[i]
        if block == 0x21:  # extension: label, then sub-blocks
            i = _sub_blocks_end(data, i + 2)
        elif block == 0x2C:  # image: 9-byte descriptor, local colour table, LZW code size, sub-blocks
            if i + 10 > len(data):
                break
            local = data[i + 9]
            i += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0)
            i = _sub_blocks_end(data, i + 1)
            frames += 1
        else:  # 0x3B, the trailer, or damage
            break
    return frames


def _apng_frames(data: bytes) -> int:
    """Frames an animated PNG declares (its ``acTL`` chunk before the image data), else 0."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return 0
    i = 8
    while i + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[i:i + 8])
        if kind == b"acTL" and i + 12 <= len(data):
            return struct.unpack(">I", data[i + 8:i + 12])[0]
        if kind == b"IDAT":
            return 0
        i += 12 + length
    return 0


def _webp_animated(data: bytes) -> bool:
    """True for an animated WebP (the extended header's animation flag)."""
    return data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8X" and len(data) > 20 and bool(data[20] & 0x02)


def extra_pictures(data: bytes) -> Optional[str]:
    """What ``data`` is when it holds more than one picture ("a TIFF of 3 pages", "an animated GIF of
    12 frames", "an animated WebP"); None for a file of one picture or any other format."""
    pages = _tiff_pages(data)
    if pages > 1:
        return f"a TIFF of {pages}{'+' if pages >= MAX_COUNT else ''} pages"
    frames = _gif_frames(data)
    if frames > 1:
        return f"an animated GIF of {frames}{'+' if frames >= MAX_COUNT else ''} frames"
    frames = _apng_frames(data)
    if frames > 1:
        return f"an animated PNG of {frames} frames"
    if _webp_animated(data):
        return "an animated WebP"
    return None


#: TIFF PhotometricInterpretation values of a sensor's raw data: a colour filter array (a Bayer mosaic), linear raw
_RAW_PHOTOMETRIC = {32803: "a raw Bayer mosaic", 34892: "linear raw sensor data"}


def not_the_picture(data: bytes) -> Optional[str]:
    """What the first picture of a TIFF-based file is when it is not the photo ("a 256×171 px preview ...",
    "a raw Bayer mosaic"), which is all OpenCV decodes: its first directory is marked as a reduced-resolution
    copy of another picture in the file (NewSubFileType bit 0), or holds the sensor's raw data (a DNG whose
    raw is first). None for any other file."""
    values: dict[int, int] = {}
    try:
        for tag, kind, count, at, end in tiff_entries(data):
            if tag in (254, 256, 257, 262) and count == 1 and tiff_number(data, kind, at, end) is not None:
                values[tag] = tiff_number(data, kind, at, end)
    except struct.error:  # a damaged directory: OpenCV's decoder says what it makes of it
        return None
    if values.get(262) in _RAW_PHOTOMETRIC:
        return _RAW_PHOTOMETRIC[values[262]]
    if values.get(254, 0) & 1:
        size = f"{values[256]}×{values[257]} px " if 256 in values and 257 in values else ""
        return f"a {size}preview (a reduced-resolution copy of the photo, as camera raw files such as DNG or NEF hold)"
    return None
