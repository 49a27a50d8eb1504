"""Write a conversion into a fresh folder beside its destination and move it into place whole.

A run that fails or is interrupted part-way leaves the previous ``--out`` (and ``--report``) as
they were: never new, uncalibrated models under an old ``variants.json``.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from idc_edge.errors import OptionError


def check_destination(path: str | os.PathLike, option: str) -> Path:
    """``--out`` / ``--report``: a folder or a path that does not exist yet, never a file.

    Raises:
        OptionError: it is a file, or a part of its parent is a file.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OptionError(f"{option} {str(path)!r} is a file; pass a folder")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OptionError(f"{option} {str(path)!r}: {str(parent)!r} is a file, not a folder")
    return path


@contextmanager
def staged(dest: Path) -> Iterator[Path]:
    """A fresh empty folder beside ``dest``; when the block ends normally it replaces ``dest``,
    otherwise (an error, Ctrl-C) it is removed and ``dest`` is untouched."""
    dest.absolute().parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.absolute().parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    publish(tmp, dest)


def publish(tmp: Path, dest: Path) -> None:
    """Replace ``dest`` by the complete folder ``tmp`` (two renames on one file system)."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.absolute().parent))
        os.rmdir(old)
        os.replace(dest, old)
    try:
        os.replace(tmp, dest)
    except BaseException:
        if old is not None:
            os.replace(old, dest)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def inside(path: Path, folder: Path) -> Path | None:
    """``path`` relative to ``folder`` when it lies inside it, else None."""
    try:
        return path.absolute().relative_to(folder.absolute())
    except ValueError:
        return None
