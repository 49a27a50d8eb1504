"""A photo's EXIF orientation: which way up its pixels are meant to be seen.

A phone or camera held in portrait stores its pixels as the sensor read them (landscape) and
says in the EXIF ``Orientation`` tag (TIFF tag 274, values 1–8) how to turn them upright.
OpenCV's decoders apply the tag for some formats, flags and versions and not for others (OpenCV
5's ``imdecode`` turns a JPEG or PNG upright with ``IMREAD_COLOR`` but not with
``IMREAD_UNCHANGED``, and a TIFF always; older versions' ``imdecode`` never did), so idc-edge takes
the tag out of the bytes before decoding and applies it here, the same way for every image file
it reads. Video and camera frames are never turned: a
JPEG frame of a video stream is shown as stored, as players do.

Pure functions: the tag from a file's bytes (JPEG APP1, PNG ``eXIf``, WebP ``EXIF``, TIFF IFD0),
taken out before decoding (:func:`take_orientation`: OpenCV's TIFF decoder applies it whatever the
flags), and the flip/transpose that makes an array upright.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

from .imageheaders import PNG_SIGNATURE, jpeg_segments, png_chunks, tiff_entries

#: EXIF tag number of Orientation
ORIENTATION_TAG = 0x0112


def _tiff_entry(data: bytes, start: int) -> tuple[int, int, str]:
    """(Orientation, absolute offset of its value, byte order) of the TIFF structure at ``data[start:]``;
    (1, -1, "") when absent or malformed."""
    for tag, kind, _, at, end in tiff_entries(data, start):
        if tag == ORIENTATION_TAG and kind == 3:  # SHORT, value in the entry's first two bytes
            value = struct.unpack(end + "H", data[at:at + 2])[0]
            return (value, at, end) if 1 <= value <= 8 else (1, -1, "")
    return 1, -1, ""


def _find(data: bytes) -> tuple[int, int, str, int]:
    """(Orientation, offset of its value in ``data``, byte order, offset of the PNG chunk holding it
    or -1); (1, -1, "", -1) when there is none."""
    if data[:2] == b"\xff\xd8":  # JPEG: markers up to the first scan
        for marker, i, length in jpeg_segments(data):
            if marker == 0xE1 and data[i + 4:i + 10] == b"Exif\0\0":
                return (*_tiff_entry(data[:i + 2 + length], i + 10), -1)
    elif data[:8] == PNG_SIGNATURE:  # PNG: the eXIf chunk
        for kind, i, length in png_chunks(data):
            if kind == b"eXIf":
                return (*_tiff_entry(data[:i + 8 + length], i + 8), i)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":  # WebP: the EXIF chunk of an extended file
        i = 12
        while i + 8 <= len(data):
            kind, length = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
            if kind == b"EXIF":
                body = i + 8 + (6 if data[i + 8:i + 14] == b"Exif\0\0" else 0)
                return (*_tiff_entry(data[:i + 8 + length], body), -1)
            i += 8 + length + (length & 1)
    elif data[:4] in (b"II*\0", b"MM\0*"):
        return (*_tiff_entry(data, 0), -1)
    return 1, -1, "", -1


def exif_orientation(data: bytes) -> int:
    """The EXIF Orientation (1–8) of an image file's bytes: JPEG, PNG, WebP or TIFF; 1 (as stored)
    when the file has none, another format, or a damaged EXIF block."""
    try:
        return _find(data)[0]
    except (struct.error, IndexError, ValueError):
        return 1


def take_orientation(data: bytes) -> tuple[int, bytes]:
    """(the file's EXIF Orientation, its bytes with the tag set to 1 "as stored").

    Decoders disagree on the tag (OpenCV 5 turns a JPEG by it for some flags only, and a TIFF
    always, whatever the flags), so the tag is taken out before decoding and applied with
    :func:`upright` afterwards: the same result with every decoder. The bytes are copied only when
    there is a tag to change; the length never changes (a PNG chunk's checksum is recomputed).
    """
    try:
        orientation, at, end, chunk = _find(data)
    except (struct.error, IndexError, ValueError):
        return 1, data
    if at < 0 or orientation == 1:
        return orientation, data
    changed = bytearray(data)
    changed[at:at + 2] = struct.pack(end + "H", 1)
    if chunk >= 0:  # PNG: the chunk's CRC covers its type and data
        length = struct.unpack(">I", changed[chunk:chunk + 4])[0]
        body = chunk + 8 + length
        changed[body:body + 4] = struct.pack(">I", zlib.crc32(changed[chunk + 4:body]))
    return orientation, bytes(changed)


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` (rows × columns × any channels) turned as EXIF ``orientation`` says, so it is seen
    upright: 1 as is, 2 mirrored left-right, 3 turned 180°, 4 mirrored top-bottom, 5 transposed,
    6 turned 90° clockwise, 7 transposed the other way, 8 turned 90° anticlockwise (the meaning of
    the tag in the EXIF standard, and what OpenCV's ``imread`` does with it). A new contiguous array
    except for 1 and unknown values, which return ``image`` itself."""
    turned = orientation in (5, 6, 7, 8)
    if turned:
        image = image.swapaxes(0, 1)
        orientation -= 4
    if orientation == 2:
        image = image[:, ::-1]
    elif orientation == 3:
        image = image[::-1, ::-1]
    elif orientation == 4:
        image = image[::-1]
    elif not turned:
        return image
    return np.ascontiguousarray(image)
