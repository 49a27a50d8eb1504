"""Frame sources: cameras, video files, images, image folders and the data set as a moving stage.

Every source yields :class:`Frame` objects with an 8-bit **BGR** image (OpenCV's order), counts
what it had to skip (an undecodable video frame, an unreadable image or patch) in ``skipped``,
logs a warning for each, and is a context manager. A file source's ``Frame.index`` is the
frame's position in the file or folder, so a skipped frame leaves a gap rather than renumbering
the rest. Use :func:`open_source` to pick the right one from a command-line argument.

One module per kind: :mod:`.base` (Frame, FrameSource), :mod:`.files` (image, image folder),
:mod:`.video`, :mod:`.camera`, :mod:`.stage` (the data set as a moving stage).
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional, Sequence, Union

from ..dataset import UM_PER_PX
from ..errors import SourceError
from ..fileio import as_path, stat_path
from .base import Frame, FrameSource
from .camera import CameraSource
from .files import IMAGE_SUFFIXES, ImageFolderSource, ImageSource, read_image
from .stage import MosaicSource, build_mosaic, sweep_positions
from .video import VideoSource

__all__ = [
    "CameraSource", "Frame", "FrameSource", "IMAGE_SUFFIXES", "ImageFolderSource", "ImageSource", "MosaicSource",
    "VideoSource", "build_mosaic", "is_dataset_folder", "open_source", "read_image", "sweep_positions",
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


def open_source(source: Union[int, str, os.PathLike], *, um_per_px: Optional[float] = None,
                patients: Optional[Sequence[str]] = None, camera_timeout_s: float = 10.0) -> FrameSource:
    """The right source for a camera index, a video, an image, an image folder or a data-set folder.

    Args:
        source: camera index (int or digits), or a path.
        um_per_px: for a data-set folder, the scale of the emitted frames (default 4.0).
        patients: for a data-set folder, which patients to show.

    Raises:
        SourceError: the path does not exist or cannot be read.
        OptionError: the path is empty (an unset shell variable).
    """
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return CameraSource(int(source), lost_timeout_s=camera_timeout_s)
    path = Path(as_path(source, "source"))
    st = stat_path(path, "source", SourceError, ": pass a video, an image, a folder of images, a data-set folder, "
                                                "or --camera N")
    if stat.S_ISDIR(st.st_mode):
        if is_dataset_folder(path):
            return MosaicSource(path, patients=patients, um_per_px=um_per_px or UM_PER_PX)
        return ImageFolderSource(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoSource(path)
