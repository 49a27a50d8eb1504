"""Shared fixtures: a tiny real model, a synthetic data set in the Kaggle layout, the real data.

The tiny model is committed in ``tests/models/`` (made by ``python -m tests.make_tiny_models``),
so the runtime tests run without TensorFlow, on the device itself.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tiny_model import PINK, PURPLE, synthetic_patches, tiny_model_files  # noqa: E402

from idc_edge.dataset import default_data_dir  # noqa: E402

#: Tests that train or convert with TensorFlow; on a device with only the [test] extra they skip.
needs_tensorflow = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                                      reason="needs TensorFlow (the [train] extra), which the device does not have")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """(int8 path, float32 path) of a tiny model trained on synthetic pink/purple patches: copies
    of the committed files, so a test may change them."""
    return tiny_model_files(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_int8(tiny_models):
    return tiny_models[0]


@pytest.fixture(scope="session")
def dense_models(tmp_path_factory):
    """(int8 path, float32 path) of a tiny fully convolutional model (sidecar ``dense``, output stride 5):
    copies of the committed files (tests/dense_model.py), so a test may change them."""
    from dense_model import dense_model_files

    return dense_model_files(tmp_path_factory.mktemp("dense_model"))


@pytest.fixture(scope="session")
def dense_int8(dense_models):
    return dense_models[0]


@pytest.fixture
def data_dir() -> Path:
    """The real patches (../shared/idc_patches or $IDC_DATA_DIR); skips when absent."""
    d = default_data_dir()
    if not d.is_dir():
        pytest.skip(f"real data not found at {d} (set IDC_DATA_DIR to the Breast Histopathology Images folder)")
    return d


@pytest.fixture
def validation_fields(data_dir):
    """Two tissue fields (500×300 px at 4 µm/px, half or more tissue) from each of four complete
    validation slides, rebuilt from the data set (``benchmarks.camera_conditions.slide_fields``)."""
    from benchmarks.camera_conditions import slide_fields

    found = slide_fields(data_dir, ("8867", "8914", "9023", "9078"), per_patient=2, min_tissue=0.5)
    if len(found) < 6:
        pytest.skip("the validation slides gave too few tissue fields")
    return found


def write_patch(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def synthetic_dataset(tmp_path) -> Path:
    """Two patients in the data set's layout: pink class 0, purple class 1, one 50×20 edge patch."""
    root = tmp_path / "idc"
    x, y = synthetic_patches(40, seed=3)
    for i, (img, label) in enumerate(zip(x, y)):
        patient = "p1" if i < 20 else "p2"
        name = f"{patient}_idx5_x{(i % 5) * 50 + 1}_y{(i // 5) * 50 + 1}_class{label}.png"
        write_patch(root / patient / str(label) / name, img)
    edge = np.full((20, 50, 3), PINK, np.uint8)
    write_patch(root / "p1" / "0" / "p1_idx5_x1001_y1001_class0.png", edge)
    return root


def frame_with_blob(shape=(480, 640), blob_rgb=PURPLE, background=(245, 245, 245), box=(100, 80, 400, 300)) -> np.ndarray:
    """A BGR frame: light background with a rectangle of ``blob_rgb`` at box (x0, y0, x1, y1), textured
    in every direction alike as tissue is (a flat-coloured rectangle has no texture, and its long
    straight sides alone read as a streak to the motion check)."""
    rng = np.random.default_rng(1)
    frame = np.empty((*shape, 3), np.float32)
    frame[:] = background[::-1]
    x0, y0, x1, y1 = box
    frame[y0:y1, x0:x1] = blob_rgb[::-1]
    # blotches a few model pixels wide whatever the frame's size (a 1080p frame is mostly used at 1 µm/px,
    # a 640×480 one at 4), in lightness only
    blotches = cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), 3.0 * max(1.0, shape[1] / 640))
    frame[y0:y1, x0:x1] += (12.0 / max(float(blotches.std()), 1e-6)) * blotches[y0:y1, x0:x1, None]
    frame += rng.normal(0, 3, frame.shape)  # a light grain, within what the noise gate lets through
    return np.clip(frame, 0, 255).astype(np.uint8)


def run_recorded(source: Path, record: Path, *options: str) -> tuple[list[str], list[dict]]:
    """``python -m idc_edge run --source SOURCE --record RECORD --sequential OPTIONS`` (exit 0 asserted):
    its warning lines and the frame records it wrote."""
    p = subprocess.run([sys.executable, "-m", "idc_edge", "run", "--source", str(source), "--record", str(record),
                        "--sequential", *options], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    records = [json.loads(line) for line in record.read_text().splitlines()][1:]
    return [line for line in p.stderr.splitlines() if "warning" in line], records
