"""What a file or pipe holds, told from its first bytes: a still image is named as one wherever a video or
a camera was expected, with what to use instead (an image has no frames to stream), and a video named
like an image (``scan.png``) is read as the video it is.

The suffix alone decided before: a JPEG named ``frame``, ``slide.avi`` or piped through ``/dev/stdin``
was called "video", and a JPEG behind a camera path (``--camera /dev/stdin < photo.jpg``) was opened as a
capture that gave its one frame, "dropped out" and was re-opened for ever.
"""
from __future__ import annotations

import os
import select
import stat
from typing import Optional

#: leading bytes of the still-image formats OpenCV reads → their names
_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
          (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"), (b"BM", "BMP"))

#: leading bytes of a GIF (read by OpenCV as an image, by FFmpeg as a video: not in :func:`image_format`)
GIF_MAGIC = (b"GIF87a", b"GIF89a")

#: leading bytes of still-image formats OpenCV reads in no build (Photoshop, QOI, a Zeiss microscope's CZI), or
#: only in builds with an optional library (JPEG XL, OpenEXR) → their names
_OTHER_MAGIC = ((b"8BPS", "Photoshop (PSD)"), (b"qoif", "QOI"), (b"ZISRAWFILE", "Zeiss CZI"),
                (b"\xff\x0a", "JPEG XL"), (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
                (b"\x76\x2f\x31\x01", "OpenEXR"))

#: formats a build of OpenCV reads only with an optional library (libavif, libjxl, OpenEXR), or OpenCV only
#: from 4.7 on (GIF): one that gives no picture is damaged, or this OpenCV lacks it
_OPTIONAL_FORMATS = ("AVIF", "JPEG XL", "OpenEXR", "GIF", "WebP", "JPEG 2000")

#: ISO media (ftyp box) brands of still images and image sequences (HEIF: ISO/IEC 23008-12) → the format's
#: name; any other brand (isom, mp42, qt, ...) is a video's
_IMAGE_BRANDS = {b"avif": "AVIF", b"avis": "AVIF", b"heic": "HEIC", b"heix": "HEIC", b"heim": "HEIC",
                 b"heis": "HEIC", b"hevc": "HEIC", b"hevx": "HEIC", b"hevm": "HEIC", b"hevs": "HEIC",
                 b"mif1": "HEIF", b"mif2": "HEIF", b"msf1": "HEIF"}

#: the footer ending a TGA 2.0 file (a TGA has no leading magic bytes)
TGA_FOOTER = b"TRUEVISION-XFILE.\x00"

#: bytes enough to tell every format above (an ftyp box's major brand and first compatible brands)
HEAD_BYTES = 32

#: seconds to wait for the first bytes of a pipe whose writer has not written yet
PIPE_WAIT_S = 1.0


def image_format(head: bytes) -> Optional[str]:
    """``"JPEG"``, ``"PNG"``, ``"TIFF"``, ``"BMP"``, ``"WebP"``, ``"JPEG 2000"`` or ``"AVIF"`` when ``head`` (a
    file's first :data:`HEAD_BYTES` bytes) starts a still image of that format, else None; also ``"HEIC"`` or
    ``"HEIF"``, which OpenCV does not read (:func:`not_read_here` says what to do), but which are ISO media as
    MP4 is: taken for a video, a phone's photo was called a recording cut off before it was finished."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return ftyp_image(head) or next((fmt for magic, fmt in _MAGIC if head.startswith(magic)), None)


def ftyp_image(head: bytes) -> Optional[str]:
    """``"AVIF"``, ``"HEIC"`` (HEVC-coded: an iPhone's or a camera's HEIF photo) or ``"HEIF"`` when ``head``
    starts an ISO media file (an ``ftyp`` box, as MP4 and MOV do) whose major brand is a still image's; for
    the generic HEIF brands (``mif1``, ``msf1``) the compatible brands in ``head`` tell AVIF and HEIC apart."""
    size = int.from_bytes(head[:4], "big")
    if head[4:8] != b"ftyp" or size < 16 or head[8:12] not in _IMAGE_BRANDS:
        return None
    major = _IMAGE_BRANDS[head[8:12]]
    if major != "HEIF":
        return major
    compatible = {_IMAGE_BRANDS.get(head[at:at + 4]) for at in range(16, min(size, len(head)) - 3, 4)}
    return next((fmt for fmt in ("AVIF", "HEIC") if fmt in compatible), major)


def an(fmt: str) -> str:
    """``fmt`` with its article, as in "a PNG image", "an AVIF image"."""
    return f"{'an' if fmt[:1] in 'AEIO' else 'a'} {fmt}"


def unread_format(data: bytes) -> Optional[str]:
    """The name of the image format of an image file's bytes ``data`` (the whole file, or at least its first
    :data:`HEAD_BYTES` and last 18 bytes) when it is one OpenCV does not read (HEIC/HEIF, TGA, Photoshop, QOI,
    a Zeiss CZI) or reads only in some builds (AVIF, JPEG XL, OpenEXR, GIF, WebP, JPEG 2000); None for the
    formats every OpenCV reads (PNG, JPEG, TIFF, BMP) and for bytes of no image format."""
    head = data[:HEAD_BYTES]
    fmt = image_format(head) or next((name for magic, name in _OTHER_MAGIC if head.startswith(magic)), None) or (
        "GIF" if head.startswith(GIF_MAGIC) else None) or ("TGA" if data.endswith(TGA_FOOTER) else None)
    return None if fmt in ("JPEG", "PNG", "TIFF", "BMP") else fmt


def not_read_here(data: bytes) -> Optional[str]:
    """Why OpenCV gave no picture of an image file's bytes ``data`` when its format explains it
    (:func:`unread_format`), with what to do; None otherwise (a damaged PNG, JPEG, TIFF or BMP, or no image).
    The words are the API's: no command-line flag."""
    fmt = unread_format(data)
    if fmt is None:
        return None
    why = (f"damaged, or this OpenCV was built without {fmt}" if fmt in _OPTIONAL_FORMATS else
           "a format OpenCV does not read")
    return (f"it is {an(fmt)} image ({why}); convert it to PNG or TIFF, which keep every pixel (not JPEG, whose "
            "compression changes fine detail and colour), and give that")


def video_format(head: bytes) -> Optional[str]:
    """The container a file's first :data:`HEAD_BYTES` bytes start, when it is a video OpenCV reads
    (``"AVI"``, ``"MP4/MOV"``, ``"Matroska/WebM"``, ``"FLV"``, ``"ASF/WMV"``, ``"MPEG"``), else None."""
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if ftyp_image(head):  # HEIF and AVIF photos are ISO media too, but of still images
        return None
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free") and int.from_bytes(head[:4], "big") >= 8:
        return "MP4/MOV"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"FLV\x01"):
        return "FLV"
    if head.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "ASF/WMV"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "MPEG"
    return None


def _head(fd: int, wait_s: float) -> bytes:
    if wait_s > 0 and not select.select([fd], [], [], wait_s)[0]:
        return b""
    try:
        return os.read(fd, HEAD_BYTES)
    except (BlockingIOError, OSError):
        return b""


def file_head(path: str) -> bytes:
    """A regular file's first :data:`HEAD_BYTES` bytes; empty for anything else or when it cannot be
    read (opened without blocking: a FIFO or device is never waited on)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return b""
    try:
        return _head(fd, 0) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
    finally:
        os.close(fd)


def file_image_format(path: str) -> Optional[str]:
    """:func:`image_format` of a regular file's first bytes; None for anything else or when it cannot
    be read (opened without blocking: a FIFO or device is never waited on)."""
    return image_format(file_head(path))


def file_video_format(path: str) -> Optional[str]:
    """:func:`video_format` of a regular file's first bytes, as :func:`file_image_format` reads them."""
    return video_format(file_head(path))


def pipe_image_format(path: str, wait_s: float = PIPE_WAIT_S) -> Optional[str]:
    """:func:`image_format` of what a pipe (FIFO) is carrying, waiting at most ``wait_s`` seconds for it.

    Only for a pipe about to be refused: the bytes read are gone from it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):
        return None
    try:
        return image_format(_head(fd, wait_s)) if stat.S_ISFIFO(os.fstat(fd).st_mode) else None
    finally:
        os.close(fd)


def instead(file: str = "FILE", source: str = "FILE") -> str:
    """What to do with an image given where frames were expected, in API words (``source=``): ``file`` as
    it goes in a command line, ``source`` as the option's value is shown."""
    return f"for an image use `idc-edge classify {file}`, or source={source} to run it as one frame"


#: top-level boxes of an ISO media file (MP4, MOV, M4V, 3GP) read at most, to find its index
MAX_BOXES = 10_000


def iso_media_without_index(fd: int, size: int) -> bool:
    """True when the regular file ``fd`` (``size`` bytes) is ISO media (MP4, MOV: its first box
    ``ftyp``, or media data first) whose top-level boxes hold no ``moov``, the index a player needs
    to find any frame: a recording cut off before it was finished (the writer crashed or was killed,
    the disk filled, the card was pulled), which MPEG-4 writers put at the end."""
    at, seen = 0, set()
    for _ in range(MAX_BOXES):
        if at + 8 > size:
            break
        head = os.pread(fd, 16, at)
        if len(head) < 8:
            break
        length, kind = int.from_bytes(head[:4], "big"), head[4:8]
        if not at and kind not in (b"ftyp", b"mdat", b"wide", b"free", b"skip"):
            return False  # not ISO media
        seen.add(kind)
        if length == 1 and len(head) >= 16:
            length = int.from_bytes(head[8:16], "big")
        elif length == 0:  # to the end of the file: nothing follows
            break
        if length < 8:
            return False  # not a box: another format, or damage this cannot judge
        at += length
    return b"moov" not in seen and bool(seen & {b"ftyp", b"mdat"})
