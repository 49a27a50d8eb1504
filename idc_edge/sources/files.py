"""Still images as sources: one image file, or the images of a folder in name order."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

import numpy as np

from ..errors import FrameError, MemoryBudgetError, SourceError
from ..fileio import as_path, name, why
from ..fileio import read_image as read_image_file
from ..frames import to_bgr8
from ..jpegquality import jpeg_warning
from .base import Frame, FrameSource
from .sniff import GIF_MAGIC, file_head, image_format

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".tif", ".tiff", ".bmp", ".webp", ".jp2", ".pgm",
                            ".ppm", ".pbm", ".pnm"})
#: suffixes of still-image formats OpenCV may not read (:func:`~idc_edge.sources.sniff.not_read_here`): in a folder
#: they are listed, so that each is said with what to do, not left out without a word
OTHER_IMAGE_SUFFIXES = frozenset({".heic", ".heif", ".hif", ".avif", ".tga", ".psd", ".jxl", ".exr", ".qoi", ".czi"})
VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mkv", ".mov", ".m4v", ".webm", ".mjpg", ".mjpeg", ".h264", ".ts", ".wmv"})


def is_hidden(path: Path) -> bool:
    """Whether a file or folder is hidden (its name starts with a dot), as the data-set reader already
    skips them: the operating system's own files, never a user's images. macOS writes ``._NAME`` beside
    every file it copies to a USB stick or network share (AppleDouble: its metadata, 4 KB, named like the
    image), and keeps deleted files in ``.Trashes``; an image folder copied from a Mac was read with one
    "cannot read image '._a.png'" warning and one unusable frame per image, and ``classify`` counted
    them as corrupt images."""
    return path.name.startswith(".")


def is_folder_image(path: Path) -> bool:
    """Whether a file found in a folder is read as one of its images: not hidden (:func:`is_hidden`), and
    named as an image, or (any other name but a video's) starting as a still image does, a GIF included: a
    browser saves JPEGs as ``.jfif``, a capture tool may name them ``.JPG_1`` or leave the suffix off. Those
    were left out of an image folder without a word (5 images, "2 frame(s)"), and so were images of formats
    OpenCV may not read (a phone's HEIC photos, TGA): they are listed, to be said with what to do."""
    if is_hidden(path):
        return False
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES or suffix in OTHER_IMAGE_SUFFIXES:
        return True
    if suffix in VIDEO_SUFFIXES:
        return False
    head = file_head(str(path))
    return bool(image_format(head)) or head.startswith(GIF_MAGIC)


_DIGITS = re.compile(r"([0-9]+)")


def name_order(path: Path) -> tuple:
    """Sort key of a file in a folder: its name with runs of digits compared as numbers, so a camera's
    unpadded numbering (``frame_2`` before ``frame_10``) is its order; the name itself breaks ties
    (``frame_01`` and ``frame_1``). Plain ``sorted`` read ``frame_1, frame_10, frame_11, frame_2``: the
    frames of a capture series out of order, in the video, the results file and the report's timeline."""
    parts = _DIGITS.split(path.name)
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts)), path.name


def in_name_order(paths: Iterable[Path]) -> list:
    """``paths`` sorted by folder, then by :func:`name_order` within it."""
    return sorted(paths, key=lambda p: (str(p.parent), name_order(p)))


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
        self.paths = [path]  # as a folder's: the image files it reads

    def _iter_frames(self) -> Iterator[Frame]:
        yield Frame(0, 0.0, self.image)


def _say_left_out(folder: Path, folders: int, videos: int) -> None:
    """One warning when an image folder holds sub-folders or videos: its frames are its own images
    only, and those were left out without a word."""
    if folders or videos:
        log.warning("folder %s: %d sub-folder(s) and %d video(s) in it are not read (an image folder's frames are "
                    "the images directly in it); give each as a source of its own", name(folder), folders, videos)


class ImageFolderSource(FrameSource):
    """The images of a folder in name order (numbers in names compared as numbers, :func:`name_order`);
    unreadable files are skipped and counted."""

    def __init__(self, folder: Union[str, os.PathLike]):
        folder = as_path(folder, "image folder")
        super().__init__(f"folder {name(folder)}")
        try:
            entries = list(Path(folder).iterdir())
            # all but folders: a FIFO, device or broken link named like an image is skipped and counted
            # when read, never silently left out
            self.paths = in_name_order(p for p in entries if not p.is_dir() and is_folder_image(p))
            folders = sum(p.is_dir() and not is_hidden(p) for p in entries)
        except OSError as e:
            raise SourceError(f"cannot list folder {name(folder)}: {why(e)}") from None
        if not self.paths:
            from ..dataset import nested_hint

            raise SourceError(f"folder {name(folder)} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
                              + nested_hint(Path(folder)))
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


#: images of a source whose headers are read for their JPEG compression (the first ones, in name order)
JPEG_CHECKED = 50


def compression_warning(source: FrameSource, um_per_px: float) -> Optional[str]:
    """What to say when ``source`` is an image file or folder whose first :data:`JPEG_CHECKED` images hold
    JPEGs compressed hard enough to change decisions at ``um_per_px`` µm per pixel
    (:func:`~idc_edge.jpegquality.jpeg_warning`); None otherwise, and for every other source."""
    from ..patchnotes import PatchNotes

    notes = PatchNotes(1)
    for path in getattr(source, "paths", [])[:JPEG_CHECKED]:
        notes.note_jpeg(path, um_per_px)
    if not notes.jpeg:
        return None
    return jpeg_warning(f"{len(notes.jpeg)} of the source's image(s)", min(q for _, q, _ in notes.jpeg), um_per_px,
                        name(notes.jpeg[0][0]))
