"""The split guard: no patient is ever in two splits."""
from __future__ import annotations

import pytest

from idc_edge.dataset import (VALIDATION_PATIENTS, PatchRecord, default_data_dir, scan_dataset,
                              split_by_patient)
from idc_edge.errors import DatasetError

pytest.importorskip("tensorflow", reason="training's data pipeline needs the [train] extra (TensorFlow)")
from train.data import assert_patient_disjoint, subsample  # noqa: E402

DATA = default_data_dir()
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"real patches not found at {DATA} (set IDC_DATA_DIR)")


def _records(patients, per_patient=4):
    return [PatchRecord(f"/d/{p}/{k % 2}/{p}_idx5_x{50 * k}_y0_class{k % 2}.png", p, k % 2, 50 * k, 0)
            for p in patients for k in range(per_patient)]


def test_guard_accepts_disjoint_patients():
    recs = _records(["a", "b", "c"])
    assert_patient_disjoint([r for r in recs if r.patient != "c"], [r for r in recs if r.patient == "c"])


def test_guard_fails_with_patient_in_two_splits():
    recs = _records(["a", "b"])
    with pytest.raises(DatasetError, match="patient b is in both the training and the validation set"):
        assert_patient_disjoint(recs[:6], recs[6:])  # patient b has patches on both sides


def test_random_split_is_by_patient_and_seeded():
    recs = _records([f"p{i}" for i in range(20)])
    a = split_by_patient(recs, seed=3)
    b = split_by_patient(recs, seed=3)
    assert a.val_patients == b.val_patients
    assert not a.train_patients & a.val_patients
    assert_patient_disjoint(a.train, a.val)
    assert len(a.train) + len(a.val) == len(recs)


def test_subsample_keeps_patients_apart():
    recs = _records([f"p{i}" for i in range(20)])
    split = split_by_patient(recs, seed=1)
    assert_patient_disjoint(subsample(split.train, 10, 0), subsample(split.val, 5, 1))


@needs_data
def test_default_split_of_real_data_uses_literature_validation_patients_and_is_disjoint():
    records = scan_dataset(DATA)
    split = split_by_patient(records)
    assert split.val_patients <= VALIDATION_PATIENTS
    assert not split.train_patients & VALIDATION_PATIENTS
    assert not split.train_patients & split.val_patients
    assert_patient_disjoint(split.train, split.val)
    assert len(split.train) + len(split.val) == len(records)
