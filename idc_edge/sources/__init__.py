"""Frame sources: cameras, video files, images, image folders and the data set as a moving stage.

Every source yields :class:`Frame` objects with an 8-bit **BGR** image (OpenCV's order), counts
what it had to skip (an undecodable video frame, an unreadable image or patch) in ``skipped``,
logs a warning for each, and is a context manager. A file source's ``Frame.index`` is the
frame's position in the file or folder, so a skipped frame leaves a gap rather than renumbering
the rest. Use :func:`open_source` to pick the right one from a command-line argument.

One module per kind: :mod:`.base` (Frame, FrameSource), :mod:`.files` (image, image folder),
:mod:`.video`, :mod:`.camera` (the threaded reader of any live capture), :mod:`.camera_forms` (what
``camera`` takes), :mod:`.modes` (modes and controls asked and granted), :mod:`.picamera`,
:mod:`.gstreamer`, :mod:`.network`, :mod:`.stage` (the data set as a moving stage).
"""
from __future__ import annotations

import numbers
import os
import stat
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..dataset import UM_PER_PX
from ..errors import OptionError, SourceError
from ..fileio import as_path, name, stat_path
from .base import Frame, FrameSource
from .camera import CameraSource
from .camera_forms import CameraTarget, open_camera, parse_camera
from .files import IMAGE_SUFFIXES, ImageFolderSource, ImageSource, read_image
from .modes import CameraControls, CameraMode
from .network import is_stream_url
from .sniff import an, file_image_format, file_video_format, instead, pipe_image_format
from .stage import MosaicSource, build_mosaic, sweep_positions
from .video import VideoSource

__all__ = [
    "CameraControls", "CameraMode", "CameraSource", "CameraTarget", "Frame", "FrameSource", "IMAGE_SUFFIXES", "ImageFolderSource", "ImageSource", "MosaicSource",
    "VideoSource", "build_mosaic", "is_dataset_folder", "open_camera", "open_source", "parse_camera", "read_image",
    "sweep_positions",
]


def is_dataset_folder(path: Union[str, os.PathLike]) -> bool:
    """True for the data set's root (``<patient>/<0|1>/``) or one patient's folder (``<0|1>/``)."""
    p = Path(path)
    if (p / "0").is_dir() or (p / "1").is_dir():
        return True
    try:
        return any((c / "0").is_dir() or (c / "1").is_dir() for c in p.iterdir() if c.is_dir())
    except OSError:
        return False


def local_path(text: str) -> str:
    """``text``, or the path a ``file://`` URL names on this machine (``file:///data/slide.avi`` →
    ``/data/slide.avi``, percent escapes decoded), as a file manager or browser copies it.

    Raises:
        SourceError: a ``file://`` URL naming another machine.
    """
    if not text[:7].lower() == "file://":
        return text
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise SourceError(f"source {text!r} names a file on the machine {parts.netloc!r}: pass a path on this machine "
                          "(mount the share first)")
    return unquote(parts.path)


def open_source(source: Union[int, str, os.PathLike, None] = None, *, camera: Union[int, str, None] = None,
                mode: Optional[CameraMode] = None, controls: Optional[CameraControls] = None,
                um_per_px: Optional[float] = None, patients: Optional[Sequence[str]] = None,
                camera_timeout_s: float = 10.0, reduce_mjpeg: int = 1) -> FrameSource:
    """The right source for a file or folder (``source``) or a camera (``camera``).

    Args:
        source: a video, an image, an image folder or a data-set folder (a path); an ``int`` is
            a camera index, as ``camera=`` (a string of digits is a path, never a camera: a file
            named ``1`` is read, and if there is none the error points to ``camera``).
        camera: any form :func:`~idc_edge.sources.camera_forms.parse_camera` takes: an index, a
            device path, ``picam[:N]``, ``jetson[:N]``, a GStreamer pipeline or a stream URL.
        mode: size, frame rate and pixel format to ask the camera for.
        controls: exposure and white-balance locks to ask the camera for.
        um_per_px: for a data-set folder, the scale of the emitted frames (default 4.0).
        patients: for a data-set folder, which patients to show.
        camera_timeout_s: seconds without camera frames before :class:`~idc_edge.errors.CameraLostError`.
        reduce_mjpeg: 2, 4 or 8 to decode a V4L2 MJPG camera's frames at that fraction of their size
            (the source's ``decode_factor`` says whether it did: multiply µm/px by it).

    Raises:
        SourceError: the path does not exist or cannot be read, or the camera cannot be opened.
        OptionError: both or neither of ``source`` and ``camera``, an unknown camera form, or an
            empty path (an unset shell variable).
    """
    if isinstance(source, numbers.Integral) and not isinstance(source, (bool, np.bool_)):  # a camera index
        source, camera = None, source if camera is None else camera
    if (source is None) == (camera is None):
        raise OptionError("open_source takes exactly one of a source (file or folder) or a camera")
    if camera is not None:
        return open_camera(parse_camera(camera), mode or CameraMode(), controls or CameraControls(),
                           lost_timeout_s=camera_timeout_s, reduce_mjpeg=reduce_mjpeg)
    text = local_path(as_path(source, "source"))
    hint = ": pass a video, an image, a folder of images or a data-set folder"
    if text.strip().isdigit():
        hint += f" (for camera {text.strip()} use camera={text.strip()})"
    elif is_stream_url(text) or text.startswith("/dev/"):
        hint += f" (for a camera use camera={text!r})"
    path = Path(text)
    st = stat_path(text, "source", SourceError, hint, options=("camera=",))  # as typed: Path() makes "http://h" "http:/h"
    if stat.S_ISDIR(st.st_mode):
        if is_dataset_folder(path):
            return MosaicSource(path, patients=patients, um_per_px=um_per_px or UM_PER_PX)
        return ImageFolderSource(path)
    if stat.S_ISFIFO(st.st_mode):  # a pipe: named by what it carries, never waited on for frames
        fmt = pipe_image_format(text)
        what = f"a pipe carrying {an(fmt)} image" if fmt else "a pipe (FIFO), not a file"
        advice = f"save the image to a file: {instead()}" if fmt else "save the data to a file and give that"
        raise SourceError(f"source {name(text)} is {what}: no source reads a pipe; {advice}", options=("source=",))
    # by content first: a JPEG named "frame" or "slide.avi" is an image, a video named "scan.png" a video
    if file_image_format(text) or (path.suffix.lower() in IMAGE_SUFFIXES and not file_video_format(text)):
        return ImageSource(path)
    return VideoSource(path)
