"""Patches for conversion: a representative set and fine-tuning set from training patients,
and the validation patients for every comparison.

The validation patients are exactly the ones the training run validated on (recorded by
``python -m train`` in ``model_card.json`` / ``train_config.json`` next to ``model.keras``, see
:func:`recorded_validation_patients`), or the ones given with ``--val-patients`` when the model has
no record; every other patient of the data folder calibrates PTQ and fine-tunes QAT. So thresholds
and "validation" metrics never come from patients the model was trained on, and calibration and
quantization-aware fine-tuning never see a validation patient.

Unreadable patches are counted and named; a validation set with more than
:data:`MAX_UNREADABLE_SHARE` of its patches unreadable, or fewer than :data:`MIN_VAL_PER_CLASS`
patches of a class, is refused: its thresholds would be chosen on what is left.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idc_edge.dataset import LoadedPatches, Split, load_patches, scan_dataset, split_by_patient
from idc_edge.errors import DatasetError, IdcEdgeError, ModelError, OptionError
from idc_edge.fileio import read_bytes

#: refuse a validation set of which more than this share of patches cannot be read
MAX_UNREADABLE_SHARE = 0.01
#: refuse a validation set with fewer readable patches than this of either class (no threshold on fewer)
MIN_VAL_PER_CLASS = 10
#: unreadable files named in the log line and in variants.json
NAMED_UNREADABLE = 5


@dataclass(frozen=True)
class ConversionData:
    """Patches read for one conversion run.

    Attributes:
        data_dir: the data folder.
        split_method: how patients were split (from :class:`idc_edge.dataset.Split`).
        train: training-patient patches for quantization-aware fine-tuning (may be a subset).
        representative: training-patient patches that calibrate full-integer quantization.
        val: every validation-patient patch.
        n_train_patients / n_val_patients: patients on each side.
        val_patients: the validation patients' names.
        unreadable: paths of patches that could not be read (validation and training sets).
    """

    data_dir: str
    split_method: str
    train: LoadedPatches
    representative: LoadedPatches
    val: LoadedPatches
    n_train_patients: int
    n_val_patients: int
    val_patients: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """JSON-ready summary for sidecars and reports (no pixels)."""
        return {
            "data_dir": self.data_dir,
            "split": self.split_method,
            "train_patients": self.n_train_patients,
            "val_patients": self.n_val_patients,
            "validation_patients": list(self.val_patients),
            "val_patches": len(self.val.records),
            "val_idc_patches": int(self.val.labels.sum()),
            "representative_patches": len(self.representative.records),
            "qat_train_patches": len(self.train.records),
            "unreadable_patches": len(self.unreadable),
            "unreadable_examples": list(self.unreadable[:NAMED_UNREADABLE]),
        }


def sample_indices(n_total: int, n: int, seed: int) -> np.ndarray:
    """``min(n, n_total)`` distinct indices in ``[0, n_total)``, seeded, in increasing order."""
    if n < 0:
        raise OptionError(f"sample size must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=min(n, n_total), replace=False))


def _subset(records, idx) -> list:
    return [records[i] for i in idx]


def recorded_validation_patients(model_path: str | os.PathLike) -> tuple[tuple[str, ...] | None, str]:
    """The validation patients the training run of ``model_path`` used, and where that was read.

    ``python -m train`` writes ``model_card.json`` (``validation_patients``: the patients it
    validated on) and ``train_config.json`` (``config.val_patients`` when given by hand) next to
    ``model.keras``. Returns ``(None, reason)`` when neither records them.
    """
    folder = Path(model_path).parent
    card = _read_json(folder / "model_card.json")
    patients = card.get("validation_patients")
    if _is_patient_list(patients):
        return tuple(str(p) for p in patients), f"the training run's model_card.json ({card.get('split_method', 'split')})"
    given = (_read_json(folder / "train_config.json").get("config") or {}).get("val_patients")
    if _is_patient_list(given):
        return tuple(str(p) for p in given), "the training run's train_config.json (--val-patients)"
    return None, f"no model_card.json or train_config.json with validation patients next to {str(model_path)!r}"


def _read_json(path: Path) -> dict:
    try:  # read_bytes: a FIFO or device there is refused at once, never waited on or read without end
        data = json.loads(read_bytes(path, "training record", ModelError).decode("utf-8"))
    except (IdcEdgeError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _is_patient_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(p, (str, int)) for p in value)


def recorded_split(records, val_patients: tuple[str, ...], source: str) -> Split:
    """Split ``records`` with exactly ``val_patients`` as the validation patients.

    Raises:
        DatasetError: none of them is in the data folder, or a part would be empty or miss a class.
    """
    present = {r.patient for r in records}
    missing = sorted(set(val_patients) - present)
    if len(missing) == len(set(val_patients)):
        raise DatasetError(f"none of the validation patients of {source} ({', '.join(val_patients)}) is in the data "
                           "folder; pass the --data the model was trained on")
    split = split_by_patient(records, val_patients)
    method = f"validation patients of {source}" + (f" (absent here: {', '.join(missing)})" if missing else "")
    return Split(split.train, split.val, method)


def check_readable(loaded: LoadedPatches, what: str, *, min_per_class: int = 0) -> None:
    """Refuse a set of which more than :data:`MAX_UNREADABLE_SHARE` is unreadable or a class is too small.

    Raises:
        DatasetError: naming the first unreadable files, or the class counts.
    """
    n_bad, n_all = len(loaded.skipped), len(loaded.skipped) + len(loaded.records)
    if n_bad > MAX_UNREADABLE_SHARE * n_all:
        raise DatasetError(f"{n_bad} of {n_all} {what} patches cannot be read (more than "
                           f"{MAX_UNREADABLE_SHARE:.0%}), e.g. {', '.join(loaded.skipped[:3])}; repair or remove them")
    n1 = int(loaded.labels.sum())
    n0 = len(loaded.records) - n1
    if min(n0, n1) < min_per_class:
        raise DatasetError(f"the {what} patches hold {n0} readable of class 0 and {n1} of class 1; a threshold "
                           f"needs at least {min_per_class} of each")


def require_some(loaded: LoadedPatches, what: str) -> None:
    """Refuse a training-patient set with no readable patch (a few unreadable ones are only counted).

    Raises:
        DatasetError: naming the first unreadable files.
    """
    if not loaded.records:
        raise DatasetError(f"no training-patient patch for {what} can be read ({len(loaded.skipped)} tried, e.g. "
                           f"{', '.join(loaded.skipped[:3]) or 'none'})")


def load_conversion_data(data_dir: str | os.PathLike, val_patients: tuple[str, ...], *, source: str = "--val-patients",
                         representative_size: int = 300, train_size: int | None = None,
                         seed: int = 0) -> ConversionData:
    """Scan ``data_dir``, split it with the training run's validation patients, read the sets conversion needs.

    Args:
        data_dir: folder in the data set's layout.
        val_patients: the validation patients (see :func:`recorded_validation_patients`).
        source: where they come from, for messages and the manifest.
        representative_size: calibration patches drawn (seeded) from training patients.
        train_size: training patches for quantization-aware fine-tuning; None for all, 0 for none.
        seed: seed of both draws.

    Raises:
        DatasetError: the folder is missing or not in the layout, a split part is empty, too many
            patches are unreadable or a validation class is too small.
        OptionError: a size is negative.
    """
    if representative_size < 1:
        raise OptionError(f"--representative must be >= 1 patch, got {representative_size}")
    records = scan_dataset(data_dir)
    split = recorded_split(records, val_patients, source)
    val = load_patches(list(split.val))
    check_readable(val, "validation", min_per_class=MIN_VAL_PER_CLASS)
    train_records = list(split.train)
    rep = load_patches(_subset(train_records, sample_indices(len(train_records), representative_size, seed)))
    require_some(rep, "PTQ calibration")
    if train_size is None:
        train = load_patches(train_records)
    else:
        train = load_patches(_subset(train_records, sample_indices(len(train_records), train_size, seed + 1)))
    if train_size != 0:
        require_some(train, "QAT fine-tuning")
    unreadable = tuple(dict.fromkeys(val.skipped + rep.skipped + train.skipped))
    return ConversionData(
        data_dir=str(Path(data_dir)), split_method=split.method, train=train, representative=rep, val=val,
        n_train_patients=len(split.train_patients), n_val_patients=len(split.val_patients),
        val_patients=tuple(sorted(split.val_patients)), unreadable=unreadable,
    )


def _empty() -> LoadedPatches:
    return LoadedPatches(np.empty((0, 50, 50, 3), np.uint8), (), ())


def load_validation_data(data_dir: str | os.PathLike) -> ConversionData:
    """Only the validation patients (for re-evaluating converted models); no training patch is read.

    Raises:
        DatasetError: the folder is missing, not in the layout, or a split part is empty.
    """
    split = split_by_patient(scan_dataset(data_dir))
    return ConversionData(
        data_dir=str(Path(data_dir)), split_method=split.method, train=_empty(), representative=_empty(),
        val=load_patches(list(split.val)), n_train_patients=len(split.train_patients),
        n_val_patients=len(split.val_patients),
    )
