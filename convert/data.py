"""Patches for conversion: a representative set and fine-tuning set from training patients,
and the validation patients for every comparison.

The patient split is :func:`idc_edge.dataset.split_by_patient` (the literature's validation
patients), the same one training uses, so calibration and quantization-aware fine-tuning never
see a validation patient.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idc_edge.dataset import LoadedPatches, load_patches, scan_dataset, split_by_patient
from idc_edge.errors import OptionError


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
    """

    data_dir: str
    split_method: str
    train: LoadedPatches
    representative: LoadedPatches
    val: LoadedPatches
    n_train_patients: int
    n_val_patients: int

    def to_dict(self) -> dict:
        """JSON-ready summary for sidecars and reports (no pixels)."""
        return {
            "data_dir": self.data_dir,
            "split": self.split_method,
            "train_patients": self.n_train_patients,
            "val_patients": self.n_val_patients,
            "val_patches": len(self.val.records),
            "val_idc_patches": int(self.val.labels.sum()),
            "representative_patches": len(self.representative.records),
            "qat_train_patches": len(self.train.records),
        }


def sample_indices(n_total: int, n: int, seed: int) -> np.ndarray:
    """``min(n, n_total)`` distinct indices in ``[0, n_total)``, seeded, in increasing order."""
    if n < 0:
        raise OptionError(f"sample size must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_total, size=min(n, n_total), replace=False))


def _subset(records, idx) -> list:
    return [records[i] for i in idx]


def load_conversion_data(data_dir: str | os.PathLike, *, representative_size: int = 300,
                         train_size: int | None = None, seed: int = 0) -> ConversionData:
    """Scan ``data_dir``, split by patient, read the sets conversion needs.

    Args:
        data_dir: folder in the data set's layout.
        representative_size: calibration patches drawn (seeded) from training patients.
        train_size: training patches for quantization-aware fine-tuning; None for all, 0 for none.
        seed: seed of both draws.

    Raises:
        DatasetError: the folder is missing, not in the layout, or a split part is empty.
        OptionError: a size is negative.
    """
    if representative_size < 1:
        raise OptionError(f"--representative must be >= 1 patch, got {representative_size}")
    records = scan_dataset(data_dir)
    split = split_by_patient(records)
    train_records = list(split.train)
    rep = load_patches(_subset(train_records, sample_indices(len(train_records), representative_size, seed)))
    if train_size is None:
        train = load_patches(train_records)
    else:
        train = load_patches(_subset(train_records, sample_indices(len(train_records), train_size, seed + 1)))
    val = load_patches(list(split.val))
    return ConversionData(
        data_dir=str(Path(data_dir)), split_method=split.method, train=train, representative=rep, val=val,
        n_train_patients=len(split.train_patients), n_val_patients=len(split.val_patients),
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
