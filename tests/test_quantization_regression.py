"""Accuracy-drop regression tests: the shipped int8 model against the shipped float32 model of the
same weights on the validation patients of the data folder.

They fail when a change to the model, the conversion or the runtime's pre/post-processing costs
accuracy: both models run through :class:`idc_edge.classifier.PatchClassifier`, each at the
threshold its sidecar ships. Skipped, with the reason, where the data folder or the shipped
models are absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


from idc_edge.classifier import MODELS_DIR, PatchClassifier  # noqa: E402
from idc_edge.dataset import default_data_dir, load_patches, scan_dataset, split_by_patient  # noqa: E402
from idc_edge.metrics import binary_metrics  # noqa: E402
from idc_edge.spec import read_spec  # noqa: E402

# IDC_TEST_MODELS_DIR checks a candidate (e.g. `python -m convert.ship --dest DIR`) before shipping it.
MODELS = Path(os.environ.get("IDC_TEST_MODELS_DIR") or MODELS_DIR)
INT8 = MODELS / "idc_int8.tflite"
FLOAT32 = MODELS / "idc_float32.tflite"
MAX_DROP_POINTS = 1.0
MIN_AGREEMENT = 0.98
MIN_BALANCED_ACCURACY = 0.85
MIN_RECALL = 0.80

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def outputs():
    data = default_data_dir()
    if not data.is_dir():
        pytest.skip(f"real patches not found at {data} (set IDC_DATA_DIR)")
    for p in (INT8, FLOAT32):
        if not p.is_file():
            pytest.skip(f"shipped model {p} is absent (ship one with `python -m convert --ship`)")
    val = load_patches(list(split_by_patient(scan_dataset(data)).val))
    with PatchClassifier(INT8) as c8, PatchClassifier(FLOAT32) as c32:
        return {"y": val.labels, "p8": c8.predict(val.images), "p32": c32.predict(val.images),
                "t8": c8.spec.threshold, "t32": c32.spec.threshold, "spec8": c8.spec}


def test_int8_sidecar_names_the_shipped_float_model():
    if not INT8.is_file():
        pytest.skip(f"shipped model {INT8} is absent")
    spec = read_spec(INT8)
    assert spec.float_model == FLOAT32.name and (MODELS / spec.float_model).is_file()


def test_int8_balanced_accuracy_drop_against_float_is_at_most_one_point(outputs):
    m8 = binary_metrics(outputs["y"], outputs["p8"], outputs["t8"])
    m32 = binary_metrics(outputs["y"], outputs["p32"], outputs["t32"])
    drop = (m32.balanced_accuracy - m8.balanced_accuracy) * 100
    assert drop <= MAX_DROP_POINTS, (f"int8 loses {drop:.2f} points of balanced accuracy against float32 "
                                     f"({m8.balanced_accuracy:.4f} vs {m32.balanced_accuracy:.4f}, "
                                     f"{m8.n_patches} validation patches)")


def test_int8_decisions_agree_with_float_on_98_percent_of_patches(outputs):
    # Both at the float model's threshold: this isolates what quantization and the runtime change.
    # Each model's own sidecar threshold is chosen independently on a flat optimum and can differ
    # without any cost in accuracy (the drop and floor tests cover the shipped thresholds).
    t = outputs["t32"]
    agree = float(np.mean((outputs["p8"] >= t) == (outputs["p32"] >= t)))
    shipped = float(np.mean((outputs["p8"] >= outputs["t8"]) == (outputs["p32"] >= t)))
    assert agree >= MIN_AGREEMENT, (f"int8 and float32 decide alike on {agree:.2%} of validation patches at the float "
                                    f"threshold {t:.3f} (at the shipped thresholds {outputs['t8']:.3f} / {t:.3f}: "
                                    f"{shipped:.2%}); need {MIN_AGREEMENT:.0%}")


def test_int8_meets_the_absolute_accuracy_floor(outputs):
    m = binary_metrics(outputs["y"], outputs["p8"], outputs["t8"])
    got = f"balanced accuracy {m.balanced_accuracy:.4f}, recall no IDC {m.recall_0:.4f}, recall IDC {m.recall_1:.4f}"
    assert m.balanced_accuracy >= MIN_BALANCED_ACCURACY, got
    assert m.recall_0 >= MIN_RECALL, got
    assert m.recall_1 >= MIN_RECALL, got
