"""Still images as sources: one image file, or the images of a folder in name order."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator, Union

import numpy as np

from ..errors import FrameError, MemoryBudgetError, SourceError
from ..fileio import as_path, name, why
from ..fileio import read_image as read_image_file
from ..frames import to_bgr8
from .base import Frame, FrameSource

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".pgm", ".ppm"})
VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm", ".mjpg", ".mjpeg", ".h264", ".ts", ".wmv"})


def read_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """An image file as BGR uint8 (16-bit and alpha images are converted); any file name.

    Raises:
        SourceError: the file is missing, not a regular file, or not a readable image.
        MemoryBudgetError: the decoded image would exceed the memory budget.
    """
    path = as_path(path, "image")
    image = read_image_file(path, "image")
    try:
        return to_bgr8(image)
    except FrameError as e:
        raise SourceError(f"image {name(path)}: {e}") from None


class ImageSource(FrameSource):
    """A single image file, yielded once (any size; large images are tiled like any frame)."""

    def __init__(self, path: Union[str, os.PathLike]):
        super().__init__(f"image {name(as_path(path, 'image'))}")
        self.image = read_image(path)

    def _iter_frames(self) -> Iterator[Frame]:
        yield Frame(0, 0.0, self.image)


def _say_left_out(folder: Path, folders: int, videos: int) -> None:
    """One warning when an image folder holds sub-folders or videos: its frames are its own images
    only, and those were left out without a word."""
    if folders or videos:
        log.warning("folder %s: %d sub-folder(s) and %d video(s) in it are not read (an image folder's frames are "
                    "the images directly in it); give each as a source of its own", name(folder), folders, videos)


class ImageFolderSource(FrameSource):
    """The images of a folder in name order; unreadable files are skipped and counted."""

    def __init__(self, folder: Union[str, os.PathLike]):
        folder = as_path(folder, "image folder")
        super().__init__(f"folder {name(folder)}")
        try:
            entries = list(Path(folder).iterdir())
            # all but folders: a FIFO, device or broken link named like an image is skipped and counted
            # when read, never silently left out
            self.paths = sorted(p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
            folders = sum(p.is_dir() for p in entries)
        except OSError as e:
            raise SourceError(f"cannot list folder {name(folder)}: {why(e)}") from None
        if not self.paths:
            raise SourceError(f"folder {name(folder)} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        _say_left_out(folder, folders, sum(p.suffix.lower() in VIDEO_SUFFIXES and not p.is_dir() for p in entries))

    def _iter_frames(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            try:
                image = read_image(path)
            except (SourceError, MemoryBudgetError) as e:
                self.skipped += 1
                log.warning("%s; skipped", e)
                continue
            yield Frame(index, float(index), image)
