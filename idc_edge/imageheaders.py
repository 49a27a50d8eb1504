"""Walking an image file's header structures, shared by what reads metadata from them (the EXIF
orientation, :mod:`idc_edge.orientation`; the colour profile, :mod:`idc_edge.iccprofile`). Pure functions
of the file's bytes; each stops where the image data starts and at the first malformed length."""
from __future__ import annotations

import struct
from typing import Iterator, Optional

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


#: the byte order of a TIFF by its first four bytes, and whether it is a BigTIFF (64-bit offsets: whole-slide
#: scans, stitched mosaics and OME-TIFF exports too large for 4 GB)
TIFF_MAGIC = {b"II*\0": ("<", False), b"MM\0*": (">", False), b"II+\0": ("<", True), b"MM\0+": (">", True)}


def tiff_entries(data: bytes, start: int = 0) -> Iterator[tuple[int, int, int, int, str]]:
    """(tag, type, count, absolute offset of the entry's value field, byte order) of each entry of the
    first IFD of the TIFF structure at ``data[start:]`` (none when it is not one). A BigTIFF's value field
    is 8 bytes (a value of up to 8 bytes is in it, else the offset of the value: :func:`tiff_pointer`),
    a classic TIFF's 4."""
    tiff = memoryview(data)[start:]
    end, big = TIFF_MAGIC.get(bytes(tiff[:4]), (None, False))
    if end is None:
        return
    ifd = struct.unpack(end + ("Q" if big else "I"), tiff[8:16] if big else tiff[4:8])[0]
    count = struct.unpack(end + ("Q" if big else "H"), tiff[ifd:ifd + (8 if big else 2)])[0]
    first, size, field = (ifd + 8, 20, 12) if big else (ifd + 2, 12, 8)
    for k in range(min(count, 1024)):
        at = first + size * k
        tag, kind = struct.unpack(end + "HH", tiff[at:at + 4])
        n = struct.unpack(end + ("Q" if big else "I"), tiff[at + 4:at + field])[0]
        yield tag, kind, n, start + at + field, end


def tiff_field_bytes(data: bytes, start: int = 0) -> int:
    """How many bytes of value an entry of the TIFF at ``data[start:]`` holds in itself: 8 in a BigTIFF, else 4."""
    return 8 if TIFF_MAGIC.get(bytes(data[start:start + 4]), ("", False))[1] else 4


def tiff_pointer(data: bytes, at: int, end: str, start: int = 0) -> int:
    """The offset (from ``start``) stored in the value field at ``at`` of an entry whose value does not fit in it."""
    wide = tiff_field_bytes(data, start) == 8
    return struct.unpack(end + ("Q" if wide else "I"), data[at:at + (8 if wide else 4)])[0]


def tiff_number(data: bytes, kind: int, at: int, end: str) -> Optional[int]:
    """A SHORT, LONG or LONG8 (types 3, 4, 16) held in the value field at ``at``; None for another type."""
    fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
    return None if fmt is None else struct.unpack(end + fmt, data[at:at + struct.calcsize(fmt)])[0]
