"""Reading the "Breast Histopathology Images" layout (numpy and OpenCV only).

The layout is ``<root>/<patient_id>/<0|1>/<patient_id>_idx5_x<X>_y<Y>_class<C>.png``: class 0 is
no IDC, class 1 is IDC; ``X``/``Y`` are the patch's top-left corner in pixels of the slide
downsampled to about 4 µm per pixel. Training, ``idc-edge evaluate`` and the mosaic source all
read the data through this module, so they agree on labels, patients and padding.

Splits are always by patient: patches of one patient are strongly correlated.
"""
from __future__ import annotations

import difflib
import logging
import numbers
import os
import random
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from .errors import DatasetError, MemoryBudgetError, OptionError, SourceError
from .fileio import as_path, name, read_image, short, stat_path

log = logging.getLogger(__name__)

PATCH_SIZE_PX = 50
UM_PER_PX = 4.0
CLASS_NAMES = ("no IDC", "IDC")

# The literature's validation patients (Cruz-Roa 2014; Janowczyk 2016), see shared/README.md.
VALIDATION_PATIENTS = frozenset(
    "13688 9381 16554 12867 12880 9076 12626 10299 8959 9023 15473 12896 13591 13461 "
    "9078 9324 9022 8956 9036 10260 10269 10261 8917 10277 12875 16896 9345 8914 8867".split()
)

# coordinates of at most 9 digits: a longer one is a typo, not a slide a billion pixels wide; a patient id
# may hold underscores (an anonymised set's "case_01"): the shortest prefix the rest of the name follows
_NAME = re.compile(r"^(?P<patient>[^/\\]+?)_idx\d{1,9}_x(?P<x>\d{1,9})_y(?P<y>\d{1,9})_class(?P<c>[01])\.png$", re.I)


@dataclass(frozen=True)
class PatchRecord:
    """One labelled patch file: its path, patient, label (1 = IDC) and slide position in pixels."""

    path: str
    patient: str
    label: int
    x: int
    y: int


def parse_patch_path(path: str | os.PathLike) -> PatchRecord:
    """Patient, label and slide coordinates from a patch's file name.

    Raises:
        DatasetError: the name does not follow ``<patient>_idx5_x<X>_y<Y>_class<C>.png``.
    """
    name = os.path.basename(str(path))
    m = _NAME.match(name)
    if m is None:
        raise DatasetError(
            f"{short(name, 100)} is not named like the data set's patches "
            "('<patient>_idx5_x<X>_y<Y>_class<0|1>.png')"
        )
    return PatchRecord(str(path), m["patient"], int(m["c"]), int(m["x"]), int(m["y"]))


def _has_class_folders(folder: Path) -> bool:
    """True when ``folder`` holds a class folder ``0`` or ``1`` (a patient's folder has them)."""
    return (folder / "0").is_dir() or (folder / "1").is_dir()


def _patient_dirs(root: Path) -> list[Path]:
    """The patient folders under ``root``; ``root`` itself when it is one patient's folder: it has a
    class folder ``0`` or ``1`` that is not itself a patient's folder (patients numbered 0, 1, 2, ...
    have folders named ``0`` and ``1`` holding class folders: that root is the data set's)."""
    if _has_class_folders(root) and not any(_has_class_folders(root / c) for c in ("0", "1")):
        return [root]
    return sorted(p for p in root.iterdir() if p.is_dir() and _has_class_folders(p))


def nested_datasets(root: Path, limit: int = 3) -> list[Path]:
    """Up to ``limit`` sub-folders of ``root`` (hidden ones left out, in name order) that hold the data set's
    patient folders, for a root that holds none itself: the "Breast Histopathology Images" archive unpacks
    into ``IDC_regular_ps50_idx5/<patient>/<0|1>/``, one level below the folder a user passes. Never raises
    (an unreadable folder holds none)."""
    found = []
    try:
        subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return found
    for sub in subs:
        try:
            if any(p.is_dir() and _has_class_folders(p) for p in sub.iterdir()):
                found.append(sub)
        except OSError:
            continue
        if len(found) >= limit:
            break
    return found


def nested_hint(root: Path) -> str:
    """``"; the data set's patient folders are in ROOT/SUB: pass that folder"`` when a sub-folder of ``root``
    holds them (:func:`nested_datasets`), else ``""``."""
    found = nested_datasets(root)
    if not found:
        return ""
    return (f"; the data set's patient folders are one level down, in {' and '.join(short(str(p), 100) for p in found)}"
            ": pass that folder")


#: other image files in a class folder: patches saved in another format, skipped and named like misnamed ones
_OTHER_IMAGES = (".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")

#: misnamed files warned one by one; the rest in one line
_WARN_EACH = 20


@dataclass(frozen=True)
class Misnamed:
    """A file in a class folder that is not a patch of the layout: its path and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class DatasetScan:
    """What :func:`scan_files` found: the patches, sorted by path, and the misnamed files it skipped."""

    records: tuple[PatchRecord, ...]
    misnamed: tuple[Misnamed, ...]


def _misnamed(path: str, label: str, patient: "str | None") -> "Misnamed | PatchRecord":
    """The patch record of a file in class folder ``label`` (of patient folder ``patient``, when the
    folder's name is the patient id), or why it is not one."""
    if not path.lower().endswith(".png"):
        return Misnamed(path, "not a .png patch")
    try:
        rec = parse_patch_path(path)
    except DatasetError:
        return Misnamed(path, "not named <patient>_idx5_x<X>_y<Y>_class<0|1>.png")
    if str(rec.label) != label:
        return Misnamed(path, f"in folder {label!r} but named class{rec.label}")
    if patient is not None and rec.patient != patient:  # it would be put on another patient's slide
        return Misnamed(path, f"in patient folder {short(patient, 40)} but named for patient {short(rec.patient, 40)}")
    return rec


def patient_ids(patients: Iterable[str] | None) -> tuple[str, ...] | None:
    """``patients`` (a selection of patients) as a tuple of patient ids, in order, or None for all.

    An id is a folder's name: text, or a whole number (``[8867]``, numpy's too) taken as its digits.

    Raises:
        OptionError: ``patients`` is one text (read a character at a time, "8867" selected patients 8, 6
            and 7), not a collection, or holds something that is no patient id (``8867.0``, ``None``, bytes).
    """
    if patients is None:
        return None
    if isinstance(patients, (str, bytes)) or not hasattr(patients, "__iter__"):
        raise OptionError(f"patients must be a list of patient ids such as ['8867'], got {patients!r:.60}",
                          option="patients")
    ids = []
    for p in patients:
        if isinstance(p, numbers.Integral) and not isinstance(p, (bool, np.bool_)) and p >= 0:
            p = str(int(p))
        if not isinstance(p, str):
            raise OptionError(f"patients must be patient ids (folder names such as '8867'), got {p!r:.60} in "
                              f"{type(patients).__name__}", option="patients")
        ids.append(p)
    return tuple(ids)


def scan_files(root: str | os.PathLike, patients: Iterable[str] | None = None) -> DatasetScan:
    """Every patch under ``root`` (the data set's root or one patient's folder), and every file in a
    class folder that is not one (named otherwise, its class suffix disagreeing with its folder, an
    image in another format; under the data set's root, a patient prefix other than its patient
    folder's name), which is skipped, never the end of the run. Hidden files and files that are not
    images (``Thumbs.db``) are left out silently.

    Args:
        root: folder in the data set's layout.
        patients: keep only these patient ids (all when None).

    Raises:
        DatasetError: ``root`` is missing, is not in the layout, or holds no patch.
    """
    root = Path(as_path(root, "data folder"))
    if not stat.S_ISDIR(stat_path(root, "data folder", DatasetError,
                                  "; pass the folder that holds the patient folders").st_mode):
        raise DatasetError(f"data folder {short(str(root), 100)} is a file; pass the folder that holds the patient folders")
    patients = patient_ids(patients)
    wanted = None if patients is None else set(patients)
    records, misnamed = [], []
    found_patients = []
    dirs = _patient_dirs(root)
    one_patient = dirs == [root]  # a patient's own folder may have been renamed; under the root, names are ids
    for pdir in dirs:
        found_patients.append(pdir.name)
        if wanted is not None and pdir.name not in wanted:
            continue
        for label in ("0", "1"):
            cdir = pdir / label
            if not cdir.is_dir():
                continue
            for entry in os.scandir(cdir):
                lower = entry.name.lower()
                if entry.name.startswith(".") or not lower.endswith((".png", *_OTHER_IMAGES)):
                    continue
                found = _misnamed(entry.path, label, None if one_patient else pdir.name)
                (misnamed if isinstance(found, Misnamed) else records).append(found)
    if not records and wanted is not None and found_patients:
        there = ", ".join(sorted(found_patients)[:8]) + (", ..." if len(found_patients) > 8 else "")
        asked = ", ".join(short(p, 24).strip("'\"") for p in sorted(wanted)[:8]) + (", ..." if len(wanted) > 8 else "")
        raise DatasetError(f"no patches of the selected patient(s) {asked or '(none)'} under {short(str(root), 100)}: "
                           f"it holds {len(found_patients)} patient folder(s) ({there}); check the patient ids")
    if not records:
        example = f" ({len(misnamed)} misnamed file(s), e.g. {short(misnamed[0].path, 100)}: {misnamed[0].reason})" \
            if misnamed else ""
        raise DatasetError(
            f"no patches found under {str(root)!r}: expected <patient>/<0|1>/<patient>_idx5_x<X>_y<Y>_class<C>.png"
            + example + ("" if found_patients else nested_hint(root))
        )
    records.sort(key=lambda r: r.path)
    misnamed.sort(key=lambda m: m.path)
    return DatasetScan(tuple(records), tuple(misnamed))


def warn_misnamed(misnamed: Sequence[Misnamed]) -> None:
    """One warning per misnamed file (the first few; the rest in one line), as for unreadable ones."""
    for m in misnamed[:_WARN_EACH]:
        log.warning("%s is not a patch of the data set (%s); skipped", short(m.path, 160), m.reason)
    if len(misnamed) > _WARN_EACH:
        log.warning("%d more misnamed file(s) skipped", len(misnamed) - _WARN_EACH)


def scan_dataset(root: str | os.PathLike, patients: Iterable[str] | None = None) -> list[PatchRecord]:
    """Every patch under ``root`` (the data set's root or one patient's folder), sorted by path;
    misnamed files are skipped with a warning each (:func:`scan_files` lists them).

    Args:
        root: folder in the data set's layout.
        patients: keep only these patient ids (all when None).

    Raises:
        DatasetError: ``root`` is missing, is not in the layout, or holds no patch.
    """
    scan = scan_files(root, patients)
    warn_misnamed(scan.misnamed)
    return list(scan.records)


def require_both_classes(records: Sequence[PatchRecord], what: str) -> None:
    """Raise :class:`DatasetError` unless ``records`` hold patches of both classes."""
    counts = class_counts(records)
    missing = [CLASS_NAMES[c] for c in (0, 1) if counts[c] == 0]
    if missing:
        raise DatasetError(f"{what} has no patch of class {' or '.join(missing)} ({len(records)} patches): "
                           "add patients with both classes or choose another split")


def class_counts(records: Iterable[PatchRecord]) -> tuple[int, int]:
    """(number of class 0 patches, number of class 1 patches)."""
    n1 = n = 0
    for r in records:
        n += 1
        n1 += r.label
    return n - n1, n1


@dataclass(frozen=True)
class Split:
    """A patient-level split; no patient is in both parts."""

    train: tuple[PatchRecord, ...]
    val: tuple[PatchRecord, ...]
    method: str

    @property
    def train_patients(self) -> frozenset[str]:
        return frozenset(r.patient for r in self.train)

    @property
    def val_patients(self) -> frozenset[str]:
        return frozenset(r.patient for r in self.val)


def _refuse_unknown_patients(given: set[str], patients: Sequence[str]) -> None:
    """Raise :class:`DatasetError` naming the given validation patients the data does not hold (a
    typo must not silently move the patient meant for validation into training)."""
    unknown = sorted(given - set(patients))
    if not unknown:
        return
    hints = [f"{u} (did you mean {', '.join(close)}?)" if (close := difflib.get_close_matches(u, patients, n=3, cutoff=0.6))
             else u for u in unknown]
    raise DatasetError(f"validation patient(s) not in the data: {'; '.join(hints)} ({len(patients)} patients in all)")


def split_by_patient(
    records: Sequence[PatchRecord],
    val_patients: Iterable[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> Split:
    """Split patches by patient.

    By default the literature's validation patients present in ``records`` are the validation
    set; when none of them is present, a seeded random ``val_fraction`` of patients is.

    Raises:
        DatasetError: a part would be empty or miss a class.
    """
    patients = sorted({r.patient for r in records})
    if val_patients is not None:
        chosen = {str(p) for p in val_patients}
        _refuse_unknown_patients(chosen, patients)
        method = "given validation patients"
    else:
        chosen = VALIDATION_PATIENTS & set(patients)
        method = "literature validation patients (Cruz-Roa 2014)"
        if not chosen:
            if not 0 < val_fraction < 1:
                raise DatasetError(f"val_fraction must be between 0 and 1, got {val_fraction}")
            rng = random.Random(seed)
            shuffled = patients[:]
            rng.shuffle(shuffled)
            chosen = set(shuffled[: max(1, round(len(patients) * val_fraction))])
            method = f"random {val_fraction:.0%} of patients, seed {seed}"
    train = tuple(r for r in records if r.patient not in chosen)
    val = tuple(r for r in records if r.patient in chosen)
    if not train or not val:
        raise DatasetError(f"the patient split ({method}) leaves the {'training' if not train else 'validation'} "
                           f"set empty ({len(patients)} patients in all)")
    require_both_classes(train, "the training set")
    require_both_classes(val, "the validation set")
    return Split(train, val, method)


def read_patch_rgb(path: str | os.PathLike, size: int = PATCH_SIZE_PX) -> np.ndarray:
    """A patch as RGB uint8 ``[size, size, 3]``; smaller edge patches padded with white.

    Edge patches were cut where the slide ends, so their pixels sit at the top-left of the cell
    and the rest (beyond the slide) is white background.

    Raises:
        SourceError: the file cannot be read as an image (missing, not a regular file, corrupt, or
            far larger than a patch).
    """
    return patch_rgb(read_patch_bgr(path, size), size)


def read_patch_bgr(path: str | os.PathLike, size: int = PATCH_SIZE_PX) -> np.ndarray:
    """A patch image as read, BGR uint8 of at most ``size``×``size`` px (grey and BGRA as BGR), unpadded.

    Raises:
        SourceError: as :func:`read_patch_rgb`.
    """
    try:
        bgr = read_image(path, "patch image", flags=cv2.IMREAD_COLOR)
    except MemoryBudgetError as e:  # a "patch" of gigapixels is a broken file: skipped like a corrupt one
        raise SourceError(str(e)) from None
    return check_patch_size(bgr, size, path)


def check_patch_size(bgr: np.ndarray, size: int, path: str | os.PathLike) -> np.ndarray:
    """``bgr`` when it fits in one ``size``×``size`` patch cell (edge patches are smaller).

    Raises:
        SourceError: it is larger: a patch of another scale or another data set, whose top-left
            corner alone was scored (or placed on the slide) without a word.
    """
    h, w = bgr.shape[:2]
    if h > size or w > size:
        raise SourceError(f"patch image {name(path)} is {w}×{h} px, larger than this data set's {size}×{size} px "
                          "patches (another scale?); classify tiles larger images")
    return bgr


def patch_rgb(bgr: np.ndarray, size: int = PATCH_SIZE_PX) -> np.ndarray:
    """A BGR image of at most ``size``×``size`` pixels as an RGB patch, padded with white at the
    right and bottom (where an edge patch's slide ended); larger images are cut to the top-left
    ``size``×``size`` (callers tile those instead)."""
    h, w = bgr.shape[:2]
    if h != size or w != size:
        out = np.full((size, size, 3), 255, np.uint8)
        out[: min(h, size), : min(w, size)] = bgr[:size, :size]
        bgr = out
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class LoadedPatches:
    """Patches read into memory: ``images`` RGB uint8 ``[N, 50, 50, 3]`` and their records."""

    images: np.ndarray
    records: tuple[PatchRecord, ...]
    skipped: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...] = ()  # each kept patch's (width, height) px as read, before padding

    @property
    def labels(self) -> np.ndarray:
        return np.array([r.label for r in self.records], np.int64)


def load_patches(records: Sequence[PatchRecord], size: int = PATCH_SIZE_PX) -> LoadedPatches:
    """Read patches, skipping (and listing) the unreadable ones."""
    images = np.empty((len(records), size, size, 3), np.uint8)
    kept, skipped, sizes = [], [], []
    for rec in records:
        try:
            bgr = read_patch_bgr(rec.path, size)
        except SourceError:
            skipped.append(rec.path)
            continue
        images[len(kept)] = patch_rgb(bgr, size)
        sizes.append((bgr.shape[1], bgr.shape[0]))
        kept.append(rec)
    return LoadedPatches(images[: len(kept)], tuple(kept), tuple(skipped), tuple(sizes))


def default_data_dir() -> Path:
    """``$IDC_DATA_DIR`` if set (not empty), else ``../shared/idc_patches``; a relative path is taken
    from the folder the process started in, however the working directory changes later (an
    absolute path either way)."""
    from .environment import env_path, start_relative

    return env_path("IDC_DATA_DIR") or start_relative("..", "shared", "idc_patches")
