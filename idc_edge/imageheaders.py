"""Walking an image file's header structures, shared by what reads metadata from them (the EXIF
orientation, :mod:`idc_edge.orientation`; the colour profile, :mod:`idc_edge.iccprofile`). Pure functions
of the file's bytes; each stops where the image data starts and at the first malformed length."""
from __future__ import annotations

import struct
from typing import Iterator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, offset of the marker, segment length as stored) of each JPEG segment before the first
    scan; fill bytes and markers without a length are stepped over."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF or marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 1 if marker == 0xFF else 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image
            return
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        yield marker, i, length
        i += 2 + length


def png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, offset of the chunk, data length) of each PNG chunk before the image data."""
    i = 8
    while i + 8 <= len(data):
        length = struct.unpack(">I", data[i:i + 4])[0]
        kind = data[i + 4:i + 8]
        if kind in (b"IDAT", b"IEND"):
            return
        yield kind, i, length
        i += 12 + length


def tiff_entries(data: bytes, start: int = 0) -> Iterator[tuple[int, int, int, int, str]]:
    """(tag, type, count, absolute offset of the entry's value field, byte order) of each entry of the
    first IFD of the TIFF structure at ``data[start:]`` (none when it is not one)."""
    tiff = memoryview(data)[start:]
    end = {b"II*\0": "<", b"MM\0*": ">"}.get(bytes(tiff[:4]))
    if end is None:
        return
    ifd = struct.unpack(end + "I", tiff[4:8])[0]
    count = struct.unpack(end + "H", tiff[ifd:ifd + 2])[0]
    for k in range(min(count, 1024)):
        at = ifd + 2 + 12 * k
        tag, kind, n = struct.unpack(end + "HHI", tiff[at:at + 8])
        yield tag, kind, n, start + at + 8, end
