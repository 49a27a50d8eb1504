"""``--cache PATH``: tf.data cache files on disk, named by exactly what they hold.

A tf.data cache file is reused as it is, whatever records the pipeline now names, so a cache
made for one patient split and read for another trains and validates on the other split's
pixels (a patient in both sets). Each cache is therefore named by a hash of its contents' key:
the role (training or validation), every file's path, label, size and modification time, and for
training the windows cut from them and the seed that orders them. A changed split, sample, seed
or file gets a new name and is built afresh; an unchanged one is reused.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from idc_edge.dataset import PatchRecord

REPO = Path(__file__).resolve().parents[1]
IGNORED_RUNS = "runs"  # .gitignore'd: the only place inside the repository a cache may go


def cache_path_problem(path: str, repo: Path = REPO) -> str | None:
    """Why ``--cache path`` cannot be used (None when it can): its folder must exist, and decoded
    patient pixels must not land in the repository's working tree outside the ignored ``runs/``."""
    if path == "memory":
        return None
    p = Path(path).expanduser().resolve()
    if not p.parent.is_dir():
        return f"folder {str(p.parent)!r} does not exist"
    if p.is_dir():
        return f"{path!r} is a folder; give a file name prefix inside it, e.g. {os.path.join(path, 'idc')}"
    if (repo / ".git").exists() and p.is_relative_to(repo) and not p.is_relative_to(repo / IGNORED_RUNS):
        return (f"{path!r} is inside the repository, which must hold no patient pixels; "
                f"put it under {IGNORED_RUNS}/ or outside the repository")
    return None


def _file_key(record: PatchRecord) -> list:
    try:
        st = os.stat(record.path)
        return [record.path, record.label, st.st_size, st.st_mtime_ns]
    except OSError:
        return [record.path, record.label, None, None]


def cache_key(role: str, records: Sequence[PatchRecord], arrays: Sequence[np.ndarray] = (), seed: int | None = None) -> str:
    """A hash of everything a cache of ``role`` holds: the files (path, label, size, mtime), the
    window arrays cut from them and the seed that orders them."""
    h = hashlib.sha256(json.dumps([role, seed, [_file_key(r) for r in records]]).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def keyed_cache(cache: str | None, key: str) -> str | None:
    """The tf.data cache argument: None and ``memory`` as given, a disk prefix with its key appended."""
    return cache if cache in (None, "memory") else f"{cache}.{key}"
