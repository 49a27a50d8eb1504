"""Still images as sources: one image file, or the images of a folder in name order."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator, Union

import cv2
import numpy as np

from ..errors import FrameError, SourceError
from ..frames import to_bgr8
from .base import Frame, FrameSource

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".pgm", ".ppm"})


def read_image(path: Union[str, os.PathLike]) -> np.ndarray:
    """An image file as BGR uint8 (16-bit and alpha images are converted).

    Raises:
        SourceError: the file is missing or not a readable image.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise SourceError(f"image {path!r} does not exist")
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SourceError(f"cannot read image {path!r}: the file is corrupt or not an image format OpenCV reads")
    try:
        return to_bgr8(image)
    except FrameError as e:
        raise SourceError(f"image {path!r}: {e}") from None


class ImageSource(FrameSource):
    """A single image file, yielded once (any size; large images are tiled like any frame)."""

    def __init__(self, path: Union[str, os.PathLike]):
        super().__init__(f"image {str(path)!r}")
        self.image = read_image(path)

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, 0.0, self.image)


class ImageFolderSource(FrameSource):
    """The images of a folder in name order; unreadable files are skipped and counted."""

    def __init__(self, folder: Union[str, os.PathLike]):
        super().__init__(f"folder {str(folder)!r}")
        self.paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not self.paths:
            raise SourceError(f"folder {str(folder)!r} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            try:
                image = read_image(path)
            except SourceError as e:
                self.skipped += 1
                log.warning("%s; skipped", e)
                continue
            yield Frame(index, float(index), image)
