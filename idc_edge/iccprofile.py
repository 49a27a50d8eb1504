"""The colour profile an image file carries (PNG ``iCCP``, JPEG ``APP2 ICC_PROFILE``, TIFF tag 34675),
by its description, so that a file in another colour space than sRGB is said, not read silently.

OpenCV decodes the stored values and ignores any profile; the model was trained on sRGB pixels. A
microscope camera's capture program may save Adobe RGB or its own camera profile: the same tissue
then has other values (Adobe RGB read as sRGB looks less saturated), which the colour gates judge as
they are, while the cause is the file's profile. Pure functions of the file's bytes; nothing is
converted.
"""
from __future__ import annotations

import struct
import zlib
from typing import Optional

from .imageheaders import PNG_SIGNATURE, jpeg_segments, png_chunks, tiff_entries, tiff_field_bytes, tiff_pointer

#: words in a profile's description that name sRGB (IEC 61966-2-1), the colour space the model knows
SRGB_WORDS = ("srgb", "61966-2")
#: TIFF tag of an embedded ICC profile (InterColorProfile)
ICC_PROFILE_TAG = 34675
#: the largest profile read (bytes); larger ones are not parsed
MAX_PROFILE_BYTES = 4 << 20


def _png_profile(data: bytes) -> Optional[bytes]:
    for kind, i, length in png_chunks(data):
        if kind == b"sRGB":
            return b"sRGB"
        if kind == b"iCCP":
            body = data[i + 8:i + 8 + length]
            name_end = body.find(b"\0")  # the profile's name, its compression method, then the profile
            if name_end < 0:
                return None
            try:
                return zlib.decompressobj().decompress(body[name_end + 2:], MAX_PROFILE_BYTES)
            except zlib.error:
                return None
    return None


def _jpeg_profile(data: bytes) -> Optional[bytes]:
    parts = {}  # a profile may span several APP2 segments, numbered from 1
    for marker, i, length in jpeg_segments(data):
        body = data[i + 4:i + 2 + length]
        if marker == 0xE2 and body.startswith(b"ICC_PROFILE\0") and len(body) > 14:
            parts[body[12]] = body[14:]
    return b"".join(parts[k] for k in sorted(parts)) or None


def _tiff_profile(data: bytes) -> Optional[bytes]:
    for tag, _, n, at, end in tiff_entries(data):
        if tag == ICC_PROFILE_TAG:
            where = tiff_pointer(data, at, end) if n > tiff_field_bytes(data) else at
            return data[where:where + min(n, MAX_PROFILE_BYTES)]
    return None


def _description(profile: bytes) -> Optional[str]:
    """The ``desc`` tag of an ICC profile (v2 ``desc`` or v4 ``mluc`` text), or None."""
    if profile == b"sRGB":
        return "sRGB"
    if len(profile) < 132:
        return None
    (tags,) = struct.unpack(">I", profile[128:132])
    for i in range(min(tags, 200)):
        sig, offset, size = struct.unpack(">4sII", profile[132 + 12 * i:144 + 12 * i] or b"\0" * 12)
        if sig != b"desc":
            continue
        tag = profile[offset:offset + size]
        if tag[:4] == b"desc" and len(tag) >= 12:
            (n,) = struct.unpack(">I", tag[8:12])
            return tag[12:12 + n].split(b"\0")[0].decode("latin-1").strip() or None
        if tag[:4] == b"mluc" and len(tag) >= 28:
            length, start = struct.unpack(">II", tag[20:28])
            return tag[start:start + length].decode("utf-16-be", "replace").strip() or None
        return None
    return None


def profile_description(data: bytes) -> Optional[str]:
    """The description of the colour profile embedded in a PNG, JPEG or TIFF file's bytes (``"sRGB"``
    for a PNG's ``sRGB`` chunk), or None when it carries none, or one that cannot be read."""
    try:
        if data.startswith(PNG_SIGNATURE):
            profile = _png_profile(data)
        elif data.startswith(b"\xff\xd8"):
            profile = _jpeg_profile(data)
        elif data[:4] in (b"II*\0", b"MM\0*"):
            profile = _tiff_profile(data)
        else:
            return None
        return _description(profile) if profile else None
    except (struct.error, IndexError, ValueError):  # a damaged header: no profile known
        return None


def is_srgb(description: str) -> bool:
    """Whether a profile's description names sRGB."""
    return any(word in description.lower() for word in SRGB_WORDS)
