"""Golden outputs: the runtime's probabilities for a fixed set of patches must not move.

Covers the shipped models *and* the runtime's pre/post-processing (channel order, uint8 input,
dequantization): any change to them shows up here. Regenerate on purpose, after shipping a new
model or changing the processing knowingly, with ``python -m tests.golden.regenerate``.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

from idc_edge.classifier import MODELS_DIR, PatchClassifier  # noqa: E402
from idc_edge.dataset import default_data_dir, load_patches, parse_patch_path  # noqa: E402
from tests.golden.patches import golden_patches, patches_sha256  # noqa: E402

# IDC_TEST_MODELS_DIR / IDC_TEST_GOLDEN check candidates before shipping (see tests/golden/regenerate.py)
MODELS = Path(os.environ.get("IDC_TEST_MODELS_DIR") or MODELS_DIR)
GOLDEN = Path(os.environ.get("IDC_TEST_GOLDEN") or ROOT / "tests" / "golden" / "shipped_models.json")
REGEN = "python -m tests.golden.regenerate"


@pytest.fixture(scope="module")
def golden() -> dict:
    if not GOLDEN.is_file():
        pytest.skip(f"no golden file {GOLDEN}; make one with `{REGEN}` after shipping a model")
    return json.loads(GOLDEN.read_text())


def _model(name: str, golden: dict) -> Path:
    path = MODELS / name
    if not path.is_file():
        pytest.skip(f"shipped model {path} is absent")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == golden["models"][name]["sha256"], (
        f"{name} is not the model the golden outputs were made with (sha256 {digest[:12]} vs "
        f"{golden['models'][name]['sha256'][:12]}); if the new model is intended, run `{REGEN}`")
    return path


def _compare(name: str, got: np.ndarray, want: list, tol: float, what: str) -> None:
    want = np.asarray(want, np.float32)
    assert got.shape == want.shape, f"{what}: {got.shape} outputs vs {want.shape} golden"
    diff = np.abs(got - want)
    worst = int(np.argmax(diff))
    assert diff.max() <= tol, (f"{name} on {what}: {int((diff > tol).sum())} outputs moved more than {tol} from "
                               f"golden (worst patch {worst}: {got[worst]:.4f} vs {want[worst]:.4f}); if intended, "
                               f"run `{REGEN}`")


def test_golden_patches_are_generated_identically(golden):
    assert patches_sha256(golden_patches()) == golden["patches_sha256"], (
        "tests/golden/patches.py now makes different patches; if intended, run " + REGEN)


@pytest.mark.parametrize("name", ["idc_int8.tflite", "idc_float32.tflite"])
def test_runtime_outputs_on_synthetic_patches_match_golden(golden, name):
    path = _model(name, golden)
    entry = golden["models"][name]
    with PatchClassifier(path, num_threads=1, max_batch=64) as clf:
        assert clf.spec.threshold == pytest.approx(entry["threshold"]), f"{name}: sidecar threshold changed"
        x = golden_patches()
        _compare(name, clf.predict(x), entry["synthetic"], entry["tolerance"], "synthetic patches (batched)")
        one = np.array([clf.predict(x[i:i + 1])[0] for i in range(0, len(x), 9)], np.float32)
        _compare(name, one, entry["synthetic"][::9], entry["tolerance"], "synthetic patches one by one")


@pytest.mark.data
@pytest.mark.parametrize("name", ["idc_int8.tflite", "idc_float32.tflite"])
def test_runtime_outputs_on_listed_real_patches_match_golden(golden, name):
    data = default_data_dir()
    if not data.is_dir():
        pytest.skip(f"real patches not found at {data} (set IDC_DATA_DIR)")
    if not golden.get("real_files"):
        pytest.skip("the golden file lists no real patches (it was made without the data folder)")
    path = _model(name, golden)
    missing = [f for f in golden["real_files"] if not (data / f).is_file()]
    if missing:
        pytest.skip(f"{len(missing)} listed patches are not in {data} (e.g. {missing[0]})")
    loaded = load_patches([parse_patch_path(data / f) for f in golden["real_files"]])
    assert not loaded.skipped, f"unreadable: {loaded.skipped[:3]}"
    entry = golden["models"][name]
    with PatchClassifier(path) as clf:
        _compare(name, clf.predict(loaded.images), entry["real"], entry["tolerance"], "listed real patches")
