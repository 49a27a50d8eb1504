"""Opening files safely: any name a file system allows, special files, and OpenCV's traps.

A file name on Linux is any byte string. Python hands a name that is not valid UTF-8 (Latin-1
from a Windows share, say) around as ``str`` with surrogate escapes, and OpenCV's readers and
writers **crash the process** (SIGSEGV) on such a string. OpenCV also reads meaning into some
names: ``%d`` starts an image sequence and ``proto:`` a network protocol. So idc-edge never
gives a user's path to OpenCV:

- images are read as bytes here and decoded with ``cv2.imdecode`` (:func:`read_image`), turned
  upright by their EXIF orientation in one place (:mod:`idc_edge.orientation`);
- videos, which OpenCV can only open by name, go through :func:`opencv_path`: the absolute
  path itself when it is made only of plain characters, otherwise a symbolic link with a plain
  name in a private temporary folder, removed afterwards.

Every file is opened without blocking (a FIFO with no writer would hang ``open``) and must be
a regular file: folders, FIFOs, devices (``/dev/zero``) and sockets are refused with a message
naming what the path is. Outputs are created without truncating anything first
(:func:`open_output`) and must not be the same file as an input or another output
(:func:`check_distinct`, by device and inode, so hard links and symlinks count).
A file written whole (a report, a CSV, a snapshot, a profile) replaces the old one only once it is
complete and on disk (:func:`replacing`), so a crash or a full disk never leaves half a file over a
good one. Values echoed in messages are shortened (:func:`short`): a message never carries a file's bytes.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import select
import shutil
import stat
import struct
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from .budget import check_buffer
from .errors import OptionError, SourceError
from .imageheaders import PNG_SIGNATURE, TIFF_MAGIC, png_chunks, tiff_entries, tiff_number
from .jpegnotes import damage, jpeg_warnings
from .mounts import pseudo_file_system

PathArg = Union[str, bytes, os.PathLike]

_PLAIN = re.compile(r"[A-Za-z0-9._/+-]+")
_WHY = {errno.ENOENT: "it does not exist", errno.ENAMETOOLONG: "the name is too long for the file system",
        errno.EACCES: "permission denied", errno.EPERM: "permission denied",
        errno.EISDIR: "it is a folder, not a file", errno.ENOTDIR: "a part of the path is not a folder",
        errno.ELOOP: "too many symbolic links", errno.ENXIO: "it is a FIFO or device with nobody reading it",
        errno.EROFS: "the file system is read-only", errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded", errno.ETXTBSY: "it is busy"}


def short(value, limit: int = 60) -> str:
    """``value`` for an error message: its repr cut to about ``limit`` characters; bytes only by length."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 12] + "…" + text[-10:]


def printable(text: str) -> str:
    """``text`` for a terminal: every character that is not printable (ESC and the rest of a
    terminal's control sequences, BEL, a newline, C1 controls) written as the escape ``repr`` gives
    it, as :func:`short` and :func:`name` show values in error lines; printable text is unchanged."""
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def name(path: PathArg, limit: int = 120) -> str:
    """A path for messages: quoted, undecodable bytes shown as escapes, cut in the middle when long."""
    text = repr(os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path))
    return text if len(text) <= limit else text[: limit // 2] + "…" + text[-(limit // 2):]


def why(error: OSError) -> str:
    """The reason an ``OSError`` gives, in words (``ENAMETOOLONG`` → "the name is too long ...")."""
    return _WHY.get(error.errno, error.strerror or type(error).__name__)


def _path_max() -> int:
    """The longest path the kernel takes in one call, in bytes with its closing NUL (``PATH_MAX``, 4096 on Linux)."""
    try:
        return int(os.pathconf("/", "PC_PATH_MAX"))
    except (OSError, ValueError, AttributeError):
        return 4096


#: see :func:`_path_max`
PATH_MAX = _path_max()


def full_path_too_long(path: PathArg) -> Optional[str]:
    """Why ``path`` cannot be used by its full name, or None when it can.

    Files that OpenCV opens, the partial video beside its target and the folder checks go by the
    absolute path, which the kernel refuses at :data:`PATH_MAX` bytes (``ENAMETOOLONG``): a short
    relative name in a working folder nested deeper than that was refused as "folder ... does not
    exist". The reason names the byte counts (full path, and the working folder's for a relative
    name) and what to do.
    """
    try:
        text = os.fsdecode(path) if isinstance(path, (bytes, os.PathLike)) else str(path)
        full = os.path.abspath(text)
        cwd = None if os.path.isabs(text) else os.getcwd()
    except (OSError, ValueError):  # the working folder was deleted: as_path says so
        return None
    length = len(os.fsencode(full))
    if length < PATH_MAX:
        return None
    if cwd is None:
        return (f"its path is {length:,} bytes long, more than the {PATH_MAX - 1:,} the system takes in one name "
                "(PATH_MAX); use a shorter path")
    return (f"its full path is {length:,} bytes long (the working folder's own path is {len(os.fsencode(cwd)):,}), "
            f"more than the {PATH_MAX - 1:,} the system takes in one name (PATH_MAX); run idc-edge from a folder "
            "with a shorter path, or name a file in one")


def check_full_path(path: PathArg, what: str, error: type, verb: str = "write") -> None:
    """Refuse ``path`` when its full name is too long for the kernel (see :func:`full_path_too_long`).

    Raises:
        ``error``: "cannot <verb> <what> '<path>': its full path is N bytes long ...".
    """
    reason = full_path_too_long(path)
    if reason:
        raise error(f"cannot {verb} {what} {name(path)}: {reason}")


def no_folder(path: PathArg) -> str:
    """Why ``path``, named as an output's folder, is not one: "folder X does not exist", that it is a
    file, or the reason the file system gives (permission denied on a folder above it, a full path
    longer than :data:`PATH_MAX`): a folder that cannot be looked up is not said not to exist."""
    reason = full_path_too_long(path)
    if reason:
        return f"folder {name(path)}: {reason}"
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return f"folder {name(path)} does not exist"
        return f"folder {name(path)} cannot be used: {why(e)}"
    except ValueError:
        return f"folder {name(path)} does not exist"
    if not stat.S_ISDIR(st.st_mode):
        return f"{name(path)} is a file, not a folder"
    return f"folder {name(path)} cannot be used"


def working_folder_gone() -> bool:
    """True when the process's working folder no longer exists (deleted, or moved away and its name
    made anew: a shell left in a folder another program removed), so no relative path can be used."""
    try:
        os.getcwd()
        return False
    except FileNotFoundError:
        return True


def gone_working_folder(what: str) -> str:
    """What a relative path ``what`` (its role and name, "source 'a.png'") is told when the working folder
    no longer exists (see :func:`working_folder_gone`)."""
    return (f"{what} is relative to the working folder, which no longer exists (deleted or moved while the shell "
            "was in it): change to an existing folder (cd \"$PWD\" if it was made again) or give the full path")


def as_path(value: PathArg, what: str) -> str:
    """``value`` as a ``str`` path (bytes names kept exactly, as surrogate escapes).

    Raises:
        OptionError: ``value`` is empty (as from an unset shell variable), holds a NUL byte, is not a
            path, or is relative while the working folder no longer exists (every use of it then
            failed as "it does not exist", naming nothing).
    """
    if isinstance(value, (bytes, os.PathLike)):
        value = os.fsdecode(value)
    if not isinstance(value, str):
        raise OptionError(f"{what} must be a path, got {type(value).__name__}")
    if not value.strip():
        raise OptionError(f"{what} is empty (an unset shell variable?): give a file or folder")
    if "\0" in value:
        raise OptionError(f"{what} {name(value)} holds a NUL character, which no file name can")
    if not os.path.isabs(value) and working_folder_gone():
        raise OptionError(gone_working_folder(f"{what} {name(value)}"))
    return value


def opencv_text(text: str, what: str, error: type = SourceError) -> str:
    """``text`` (a device path, stream URL or pipeline OpenCV must take as is) when OpenCV can take
    it: valid UTF-8 without NUL. A name with undecodable bytes would crash OpenCV (SIGSEGV).

    Raises:
        ``error``: naming what to use instead.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{what} {name(text)} holds bytes that are not UTF-8 text, which OpenCV cannot open; "
                    "use a camera index, a /dev/v4l/by-id link or a URL of plain characters") from None
    if "\0" in text:
        raise error(f"{what} {name(text)} holds a NUL character")
    return text


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device (terminal or /dev file)"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _open_checked(path: str, flags: int, what: str, error: type, hint: str = "", streams: bool = False) -> int:
    """Open without blocking; refuse anything but a regular file (closing it again).

    With ``streams``, FIFOs, sockets and character devices (a pipe, a terminal, ``/dev/null``)
    are accepted too and stay non-blocking, so a reader that stops reading cannot hang a write
    (see :func:`write_all`); folders and block devices never are.
    """
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as e:
        verb = "read" if (flags & os.O_ACCMODE) == os.O_RDONLY else "write"
        raise error(f"cannot {verb} {what} {name(path)}: {why(e)}{hint}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
        elif not (streams and (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode))):
            raise error(f"{what} {name(path)} is {_kind(mode)}, not a regular file{hint}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_all(fd: int, data: bytes, timeout_s: float, what: str) -> None:
    """Write all of ``data`` to ``fd``; on a non-blocking stream wait at most ``timeout_s`` seconds
    for it to take more.

    Raises:
        OSError: from the write (``ETIMEDOUT`` when the reader took nothing for ``timeout_s``).
    """
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            if not select.select([], [fd], [], timeout_s)[1]:
                raise OSError(errno.ETIMEDOUT, f"{what} took nothing for {timeout_s:g} s (nobody reading it?)") from None
            continue
        view = view[n:]


def stat_path(path: PathArg, what: str, error: type = SourceError, hint: str = "",
              options: tuple = ()) -> os.stat_result:
    """``os.stat`` of ``path`` (through symlinks), any failure as ``error`` in words (``options``: the
    option names ``hint`` uses, see :mod:`idc_edge.errors`).

    Unlike ``Path.exists()``, which raises a bare ``OSError`` for a name that is too long, every
    reason (missing, too long, permission, a loop of links) becomes one clear message.
    """
    path = as_path(path, what)
    try:
        return os.stat(path)
    except OSError as e:
        reason = "does not exist" if e.errno in (errno.ENOENT, errno.ENOTDIR) else f"cannot be used: {why(e)}"
        raise error(f"{what} {name(path)} {reason}{hint}", options=options) from None


def is_regular_file(path: PathArg) -> bool:
    """True when ``path`` is (or links to) a regular file; False for anything else and for any name
    the file system cannot look up (``Path.is_file()`` raises for a name that is too long)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def open_input(path: PathArg, what: str = "file", error: type = SourceError) -> int:
    """A read-only descriptor of a regular file, opened without blocking (close it yourself).

    Raises:
        ``error``: the path is missing, unreadable, a folder, FIFO, device or socket.
    """
    return _open_checked(as_path(path, what), os.O_RDONLY, what, error)


def read_bytes(path: PathArg, what: str = "file", error: type = SourceError) -> bytes:
    """The whole content of a regular file, checked against the memory budget before reading.

    Raises:
        ``error``: the path is missing, unreadable, a folder, FIFO, device or socket.
        MemoryBudgetError: the file is larger than the memory budget.
    """
    path = as_path(path, what)
    fd = _open_checked(path, os.O_RDONLY, what, error)
    try:
        size = os.fstat(fd).st_size
        check_buffer((size,), 1, f"reading {what} {name(path)}", "use a smaller file")
        chunks, left = [], size
        while True:
            block = os.read(fd, max(left, 1 << 16))
            if not block:
                break
            chunks.append(block)
            left -= len(block)
            if left < 0:  # the file grew while being read: stay within the budget
                check_buffer((size - left,), 1, f"reading {what} {name(path)}", "use a smaller file")
        return b"".join(chunks)
    except OSError as e:
        raise error(f"cannot read {what} {name(path)}: {why(e)}") from None
    finally:
        os.close(fd)


# -- images ---------------------------------------------------------------------------------



def image_dimensions(data: bytes) -> Optional[tuple[int, int, int]]:
    """(width, height, most bytes per decoded pixel) from an image file's header, or None for an
    unknown format. The bytes per pixel are exact for PNG and JPEG, an upper bound for the rest.

    Covers PNG, JPEG, BMP, WebP, TIFF, JPEG 2000, PNM and GIF, so a decoded size can be checked against
    the memory budget before OpenCV allocates it. A GIF's size is its logical screen, which OpenCV's
    decoder allocates as BGRA whatever its pictures hold (a 45-byte GIF claiming 30000×30000 px took
    6 GB and 14 s to decode before the rescale's budget check refused it).
    """
    try:
        if data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            sample = 2 if data[24] == 16 else 1
            channels = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}.get(data[25], 4)  # grey+alpha decodes as BGRA
            return w, h, sample * channels
        if data[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    i += 1
                    continue
                marker = data[i + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                    i += 1 if marker == 0xFF else 2
                    continue
                length = struct.unpack(">H", data[i + 2:i + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", data[i + 5:i + 9])
                    return w, h, (2 if data[i + 4] > 8 else 1) * max(3, data[i + 9])  # 12-bit JPEG: 16 bits
                i += 2 + length
            return None
        if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
            w, h = struct.unpack("<HH", data[6:10])
            return w, h, 4
        if data[:2] == b"BM" and len(data) >= 26:
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h), 4
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            kind = data[12:16]
            if kind == b"VP8X":
                return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little"), 4
            if kind == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF), 4
            if kind == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF, 4
            return None
        if data[:4] in TIFF_MAGIC:  # a BigTIFF too: a stitched mosaic's header claimed its size unchecked
            dims = {tag: tiff_number(data, kind, at, end) for tag, kind, _, at, end in tiff_entries(data)
                    if tag in (256, 257)}
            if dims.get(256) is not None and dims.get(257) is not None:
                return dims[256], dims[257], 8
            return None
        if data[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n":  # JPEG 2000 file: the ihdr box
            at = data.find(b"ihdr", 0, 4096)
            if at >= 0:
                h, w = struct.unpack(">II", data[at + 4:at + 12])
                return w, h, 8
            return None
        if data[:4] == b"\xff\x4f\xff\x51":  # JPEG 2000 code stream: the SIZ segment
            w, h, x0, y0 = struct.unpack(">IIII", data[8:24])
            return w - x0, h - y0, 8
        m = re.match(rb"P[1-7]\s+(?:#[^\n]*\s+)*(\d+)\s+(?:#[^\n]*\s+)*(\d+)", data[:512])
        if m:
            return int(m.group(1)), int(m.group(2)), 6
    except (struct.error, IndexError, ValueError):
        return None
    return None


def over_opencv_pixel_limit(dims: Optional[tuple]) -> Optional[int]:
    """The ``OPENCV_IO_MAX_IMAGE_PIXELS`` set in the environment (a container's or a shell's setting) when an
    image of ``dims`` (width, height, ...; None: unknown) has more pixels than it lets OpenCV decode, else None.
    OpenCV's own default, 2³⁰, is far above the memory budget."""
    text = os.environ.get("OPENCV_IO_MAX_IMAGE_PIXELS", "").strip()
    limit = int(text) if text.isdigit() and len(text) < 20 else None
    return limit if limit is not None and dims is not None and dims[0] * dims[1] > limit else None


def decode_image(data: bytes, where: str, flags: Optional[int] = None, error: type = SourceError,
                 upright: bool = False, notes: Optional[list] = None) -> np.ndarray:
    """Decode image file bytes with OpenCV (``cv2.IMREAD_UNCHANGED`` by default), budget-checked.

    ``cv2.IMREAD_COLOR`` gives uint8 BGR scaled by the range the data really use
    (:func:`~idc_edge.frames.to_bgr8`): OpenCV's own conversion divides 16-bit samples by 256,
    which turns a 12-bit camera's image (values up to 4095) nearly black.

    OpenCV's own use of the EXIF orientation (which depends on the flags and the version) is
    always switched off; with ``upright`` the orientation is applied here
    (:mod:`idc_edge.orientation`), the same for every flag: a photo taken in portrait comes out
    upright. Without it (video and camera frames) the pixels are as stored.

    An alpha channel is laid over white (:func:`~idc_edge.frames.over_white`; kept through
    ``cv2.IMREAD_COLOR`` too): transparent pixels read as empty glass, not as the colour stored under
    them, said once per image. The result has no alpha channel.

    libjpeg's own warnings about damaged data never reach the terminal (:mod:`idc_edge.jpegnotes`):
    they are appended to ``notes`` when it is given (the caller says it in its words), else a
    damaged JPEG is logged as one warning naming ``where``.

    Raises:
        ``error``: the bytes are not an image OpenCV reads.
        MemoryBudgetError: the decoded image would exceed the memory budget.
    """
    import cv2

    colour = flags == cv2.IMREAD_COLOR
    unchanged = flags in (None, cv2.IMREAD_UNCHANGED) or (colour and _may_hold_alpha(data))  # alpha kept to lay over white
    if upright:
        from .orientation import take_orientation, upright as turn_upright

        orientation, data = take_orientation(data)  # out of the decoder's hands, applied below
    if data.startswith(PNG_SIGNATURE) and b"IEND" not in data[-4096:]:
        # cut short (a copy interrupted): libpng would print "PNG input buffer is incomplete" on the
        # terminal beside idc-edge's own one line about the file
        raise error(f"cannot read {where}: the PNG file is cut short (no end chunk); copy it again")
    from .multiimage import not_the_picture

    first = not_the_picture(data)
    if first:  # a camera raw file: OpenCV decodes only its preview, scored as the photo at a wrong scale
        raise error(f"cannot read {where}: it is a camera raw file whose first picture, all OpenCV reads, is {first}, "
                    "not the photo; convert it to TIFF, PNG or JPEG at full size (the camera's software or a raw "
                    "converter)")
    dims = image_dimensions(data)
    if dims is not None:
        w, h, bpp = dims  # as decoded unchanged; BGR (of 16-bit samples when deep) when converted to colour
        need = bpp if unchanged else (6 if colour and bpp in (2, 6, 8) else 3)
        check_buffer((w, h, need), 1, f"decoding {where} ({w}×{h} px)", "use a smaller image or split it into tiles")
    said: list = []
    with jpeg_warnings() if data[:2] == b"\xff\xd8" else contextlib.nullcontext(said) as said:
        try:
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION
                                 if unchanged else (flags | cv2.IMREAD_ANYDEPTH if colour else flags) | cv2.IMREAD_IGNORE_ORIENTATION)
        except cv2.error:  # e.g. OpenCV's own pixel limit
            image = None
        if image is None and colour:
            # OpenCV's conversion to colour cannot take every sample format it decodes (a TIFF of 32-bit
            # floats: "can not handle images with 32-bit samples"); decoded as stored, converted below
            if dims is not None:
                check_buffer((dims[0], dims[1], dims[2]), 1, f"decoding {where} ({dims[0]}×{dims[1]} px)",
                             "use a smaller image or split it into tiles")
            with contextlib.suppress(cv2.error):
                image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    if notes is not None:
        notes.extend(said)
    elif image is not None and damage(said):
        logging.getLogger(__name__).warning("%s has damaged JPEG data (%s): what could be decoded is used; a part the "
                                            "data did not reach is grey and not classified", where, damage(said))
    if image is None:
        from .sources.sniff import HEAD_BYTES, video_format

        video = video_format(data[:HEAD_BYTES])
        if video:  # a video named like an image (scan.png): not "corrupt"
            raise error(f"cannot read {where}: it holds a video ({video}), not an image, whatever its name says; "
                        "give it as a video source, or save its frames as images")
        limit = over_opencv_pixel_limit(dims)
        if limit is not None:  # a good image, refused by a setting
            raise error(f"cannot read {where}: its {dims[0]}×{dims[1]} px are more than OPENCV_IO_MAX_IMAGE_PIXELS="
                        f"{limit} in the environment lets OpenCV decode; unset that variable or raise it")
        from .sources.sniff import not_read_here

        other = not_read_here(data)
        if other:  # a HEIC photo, a TGA: named with what to do, not called corrupt
            raise error(f"cannot read {where}: {other}")
        raise error(f"cannot read {where}: the file is empty, corrupt or not an image format OpenCV reads")
    if image.ndim == 3 and image.shape[2] == 4 and image.dtype.kind in "iu":
        from .frames import over_white

        image, transparent = over_white(image)
        if transparent and where not in _TRANSPARENT_SAID:
            _TRANSPARENT_SAID.add(where)
            logging.getLogger(__name__).warning(
                "%s has transparent pixels: they are read over white, as empty glass, not as the colour stored "
                "under them", where)
    if colour and (image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3):
        from .errors import FrameError
        from .frames import to_bgr8

        try:
            image = to_bgr8(image)
        except FrameError as e:
            raise error(f"cannot read {where}: {e}") from None
    if upright:
        image = turn_upright(image, orientation)
        _say_extra_pictures(data, where)
    return image


#: images whose transparent pixels were said to be read over white (once each)
_TRANSPARENT_SAID: set = set()


def _may_hold_alpha(data: bytes) -> bool:
    """Whether image file bytes may decode with an alpha channel: not a JPEG, nor a PNG whose header
    has none (colour type 4 or 6, or a ``tRNS`` chunk before its pixels); any other format may."""
    if data[:2] == b"\xff\xd8":
        return False
    if data.startswith(PNG_SIGNATURE) and len(data) > 25:
        return data[25] in (4, 6) or any(kind == b"tRNS" for kind, _, _ in png_chunks(data))
    return True


def _say_extra_pictures(data: bytes, where: str) -> None:
    """One warning when an image file holds more pictures than the first, which alone OpenCV decodes
    (:mod:`idc_edge.multiimage`): a stack of patches in one TIFF was scored as one patch, silently."""
    from .multiimage import extra_pictures

    kind = extra_pictures(data)
    if kind:
        logging.getLogger(__name__).warning("%s is %s: only the first is read; save each picture as an image of "
                                            "its own (or the frames as a video)", where, kind)


def lock_within(fd: int, wait_s: float) -> bool:
    """Take an exclusive advisory lock (``flock``) on the file or folder open as ``fd``, held until ``fd``
    is closed, waiting up to ``wait_s`` seconds for another holder. False when it was still held then;
    True when taken, or when the file system takes no locks (some network mounts: go on unlocked)."""
    import fcntl
    import time

    deadline = time.monotonic() + max(0.0, float(wait_s))
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def read_image(path: PathArg, what: str = "image", flags: Optional[int] = None, error: type = SourceError) -> np.ndarray:
    """An image file decoded by OpenCV from bytes read here (any file name; budget-checked), turned
    upright as its EXIF orientation says (whatever ``flags`` and the OpenCV version).

    Returns the array as OpenCV decodes it (BGR or grey, 8 or 16 bit, transparent pixels laid over
    white; ``flags`` as for ``cv2.imdecode``, default ``cv2.IMREAD_UNCHANGED``).

    Raises:
        ``error``: missing, unreadable, not a regular file, or not an image.
        MemoryBudgetError: the file or the decoded image exceeds the memory budget.
    """
    path = as_path(path, what)
    data = read_bytes(path, what, error)
    _say_colour_profile(data, f"{what} {name(path)}")
    return decode_image(data, f"{what} {name(path)}", flags, error, upright=True)


#: colour profiles other than sRGB already said (once each per process: a folder holds many such images)
_PROFILES_SAID: set = set()


def _say_colour_profile(data: bytes, where: str) -> None:
    """One warning per colour profile other than sRGB that an image file carries (:mod:`idc_edge.iccprofile`):
    its values are read as sRGB, unconverted, as OpenCV reads them."""
    from .iccprofile import is_srgb, profile_description

    described = profile_description(data)
    if described is None or is_srgb(described) or described in _PROFILES_SAID:
        return
    _PROFILES_SAID.add(described)
    logging.getLogger(__name__).warning(
        "%s carries the colour profile %s, not sRGB: its values are read as sRGB (the model's colour space) "
        "without conversion, so its colours are not the ones the slide showed; save the images in sRGB (said "
        "once per profile)", where, printable(repr(described[:80])))


# -- paths OpenCV opens itself (videos) -----------------------------------------------------

def _plain(path: str) -> bool:
    try:
        path.encode("ascii")
    except UnicodeEncodeError:
        return False
    return bool(_PLAIN.fullmatch(path)) and all(len(part) <= 255 for part in path.split("/"))


@contextlib.contextmanager
def opencv_path(path: PathArg, what: str = "file", error: type = SourceError) -> Iterator[str]:
    """A name under which OpenCV can open ``path``, valid inside the ``with`` block.

    The absolute path itself when it is plain ASCII letters, digits and ``._/+-``; otherwise a
    symbolic link named ``file<suffix>`` in a private temporary folder (mode 0700), pointing
    at the real path (which need not exist yet: a writer creates it through the link). The
    folder is removed when the block ends; the real file stays.

    Raises:
        ``error``: the link cannot be made (no writable temporary folder).
    """
    check_full_path(path, what, error, "open")
    path = os.path.abspath(as_path(path, what))
    if _plain(path):
        yield path
        return
    suffix = Path(path).suffix
    suffix = suffix if _plain(suffix) and len(suffix) <= 16 else ""
    try:
        folder = tempfile.mkdtemp(prefix="idc-edge-")
    except OSError as e:
        raise error(f"cannot open {what} {name(path)}: its name needs a temporary link and the temporary "
                    f"folder is not writable ({why(e)}); rename the file to plain ASCII letters") from None
    try:
        link = os.path.join(folder, "file" + suffix)
        os.symlink(os.fsencode(path), os.fsencode(link))
        yield link
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- outputs --------------------------------------------------------------------------------

#: What an existing file must start with to be replaced by an output of each kind (its first
#: bytes, leading white space and a UTF-8 byte-order mark ignored). Anything else was not written
#: by such an output, so replacing it would destroy another program's file.
KINDS = {
    "html": ("an HTML page", (b"<!doctype html", b"<html")),
    "csv": ("a CSV written by idc-edge classify", (b"path,patient,label,probability",)),
    "video": ("a video file", (b"RIFF", b"\x1aE\xdf\xa3", b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")),
}


def check_replaceable(fd: int, path: PathArg, what: str, kind: str, error: type) -> None:
    """Refuse to replace the open regular file ``fd`` unless it is empty or already of ``kind``
    (a key of :data:`KINDS`): ``--html`` onto a video or a model, ``--out`` onto a photo.

    Raises:
        ``error``: naming the file and what it would have to be.
    """
    if not stat.S_ISREG(os.fstat(fd).st_mode) or os.fstat(fd).st_size == 0:
        return
    label, starts = KINDS[kind]
    raw = os.pread(fd, 64, 0)
    head, mp4 = raw.lstrip(b"\xef\xbb\xbf \t\r\n"), raw[4:8]  # ISO media (.mp4, .mov): first box's name at 4-8
    if not any(head[:len(s)].lower() == s.lower() or mp4 == s for s in starts):
        raise error(f"{what} {name(path)} already exists and is not {label}: replacing it would destroy another "
                    "program's file; choose another name, or delete the file first if it may go")


def refuse_kernel_files(path: str, what: str, error: type) -> None:
    """Refuse an output file or folder that is, or would be made, on a kernel pseudo file system (``/proc``, ``/sys``):
    writing there fails as "I/O error" or "does not exist", which names the wrong cause. A pipe or
    terminal reached through ``/proc`` (``/dev/stdout``) is a stream, not a file there, and passes.

    Raises:
        ``error``: naming the path, where it is and what to give instead.
    """
    exists = os.path.lexists(path)
    try:
        mode = os.stat(path).st_mode if exists else 0
    except OSError:
        return
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode):
        return
    found = pseudo_file_system(path if exists else os.path.dirname(os.path.abspath(path)))
    if found:
        kind, mount = found
        raise error(f"cannot write {what} {name(path)}: it is in {mount}, the kernel's {kind} file system, where "
                    "files are the kernel's, not ours; give a place on a disk (in your home folder, for example)")


def open_output(path: PathArg, what: str, *, append: bool, error: type, hint: str = "",
                readable: bool = False, streams: bool = False, replaces: Optional[str] = None) -> int:
    """Open (creating if missing) a regular file for writing and return its descriptor.

    Opened without blocking, so a FIFO nobody reads or a device cannot hang the run; anything
    but a regular file is refused before a byte is written. With ``append`` nothing of an
    existing file is changed; otherwise it is truncated only after these checks. ``readable``
    opens it for reading too; ``streams`` accepts a pipe, socket or character device as well
    (left non-blocking: write to it with :func:`write_all`). ``replaces`` (a key of
    :data:`KINDS`) names what the output writes: an existing non-empty file of another kind is
    refused untouched (see :func:`check_replaceable`).

    Raises:
        ``error``: the path is empty, a folder, FIFO, device, socket, cannot be created, or
            (with ``replaces``) is another kind of file.
    """
    path = as_path(path, what)
    check_full_path(path, what, error)
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise error(f"cannot write {what} {name(path)}: {no_folder(parent)}")
    refuse_kernel_files(path, what, error)
    readable = readable or replaces is not None
    if readable:  # never on a FIFO: opened read-write it would be its own reader and never refuse
        try:
            readable = stat.S_ISREG(os.stat(path).st_mode)
        except OSError:
            pass
    flags = (os.O_RDWR if readable else os.O_WRONLY) | os.O_CREAT | (os.O_APPEND if append else 0)
    fd = _open_checked(path, flags, what, error, hint, streams)
    if replaces is not None:
        try:
            check_replaceable(fd, path, what, replaces, error)
        except BaseException:
            os.close(fd)
            raise
    if not append and stat.S_ISREG(os.fstat(fd).st_mode):
        try:
            os.ftruncate(fd, 0)
        except OSError as e:
            os.close(fd)
            raise error(f"cannot write {what} {name(path)}: {why(e)}") from None
    return fd


@contextlib.contextmanager
def replacing(path: PathArg, what: str, *, error: type, replaces: Optional[str] = None) -> Iterator[int]:
    """Write a whole file atomically: a descriptor of a new file beside ``path`` to write to, put in
    ``path``'s place in one step (``os.replace``) when the block ends, after its data is on disk.

    Until then the old file stays as it was; an exception in the block (a full disk, a crash of the
    writer, Ctrl-C) removes the new file and leaves the old one whole. ``kill -9`` can leave only the
    hidden ``.NAME.XXXXXXXX.part`` beside it, never a cut file in its place. A symbolic link is
    followed (the file it points to is replaced, the link kept); the file keeps its permissions (a
    new one gets ``0666`` less the umask). ``replaces`` (a key of :data:`KINDS`) refuses to replace
    an existing non-empty file of another kind, untouched.

    Raises:
        ``error``: the folder is missing, the path is a folder, FIFO, device or socket, another kind
            of file, or writing fails (``OSError`` in the block is turned into ``error`` too).
    """
    path = as_path(path, what)
    check_full_path(path, what, error)
    target = os.path.realpath(path)
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        raise error(f"cannot write {what} {name(path)}: {no_folder(parent)}")
    refuse_kernel_files(target, what, error)
    mode = None
    if os.path.lexists(target):
        fd = _open_checked(target, os.O_RDONLY, what, error)  # refuses a folder, FIFO or device, never blocks
        try:
            if replaces is not None:
                check_replaceable(fd, path, what, replaces, error)
            mode = stat.S_IMODE(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
    tmp = os.path.join(parent, f".{os.path.basename(target)[:60]}.{os.urandom(4).hex()}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as e:
        raise error(f"cannot write {what} {name(path)}: {why(e)}") from None
    try:
        try:
            yield fd
            if mode is not None:
                os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise error(f"cannot write {what} {name(path)}: {why(e)}; the earlier file, if any, is kept") from None
        raise
    try:  # the new name on disk too (best effort: not every file system lets a folder be opened)
        folder = os.open(parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass


def write_whole(path: PathArg, data: bytes, what: str, *, error: type, replaces: Optional[str] = None) -> None:
    """Write ``data`` as the whole of ``path``, atomically (see :func:`replacing`).

    Raises:
        ``error``: as :func:`replacing`.
    """
    with replacing(path, what, error=error, replaces=replaces) as fd:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]


def _identity(path: PathArg, label: str) -> tuple:
    """(device, inode) of an existing file (through symlinks), else its fully resolved path.

    Raises:
        OptionError: ``path`` (named ``label``) is relative and the working folder no longer exists.
    """
    try:
        st = os.stat(path)
        return ("inode", st.st_dev, st.st_ino)
    except (OSError, ValueError):
        try:
            return ("path", os.path.realpath(path))
        except FileNotFoundError:  # os.getcwd() of a working folder that is gone
            raise OptionError(gone_working_folder(f"{label} {name(path)}")) from None


def check_distinct(inputs: Sequence[tuple[str, Optional[PathArg]]], outputs: Sequence[tuple[str, Optional[PathArg]]]) -> None:
    """Refuse an output that is the same file as an input or as another output, before anything opens.

    Files are compared by device and inode (hard links and symbolic links count as the same
    file), files that do not exist yet by their resolved path. ``None`` entries are ignored.

    Raises:
        OptionError: naming both roles in the caller's words, e.g. "VideoSink 'a.avi' is the same file
            as the source" (a session) or "--save-video 'a.avi' is the same file as --source" (the CLI).
    """
    seen: dict[tuple, str] = {}
    for label, path in inputs:
        if path is not None:
            seen.setdefault(_identity(path, label), label)
    for label, path in outputs:
        if path is None:
            continue
        key = _identity(path, label)
        if key in seen:
            raise OptionError(f"{label} {name(path)} is the same file as {seen[key]}: writing it would destroy "
                              "that; choose another output file")
        seen[key] = label
