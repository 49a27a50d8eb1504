"""A tiny fully convolutional IDC-like model for tests of the dense pass.

Like the tiny patch model (dark purple = "IDC" on synthetic colour patches), but trained on soft
targets, the share of purple in a pink/purple blend, so its score moves smoothly with the colour
of real H&E tissue too instead of sticking at 0 or 1; and built so that one pass over a whole
image gives every window's score (the sidecar's ``dense``):

    50×50 RGB bytes → Rescaling → Conv 5×5 stride 5, valid (10×10×8) → Conv 3×3, valid (8×8×8)
    → Conv 8×8 (the whole window) to one sigmoid unit

The output stride is 5 model pixels (only the first layer strides), and no layer pads, so the
score at output ``[i, j]`` depends only on the 50×50 window at (x = 5j, y = 5i). The saved
input is ``[1, 50, 50, 3]``; the runtime resizes it for whole images. (An 8×8 average pool as
the head made LiteRT's XNNPACK delegate fail to prepare the int8 model; a window-sized
convolution is the same idea and runs everywhere.)

The files are committed in ``tests/models/`` (a few KB, made by ``python -m tests.dense_model``
through the project's converter), so runtime tests need no TensorFlow.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from idc_edge.spec import DenseSpec, ModelSpec, write_spec

try:
    from .make_tiny_models import fit_and_export, save_models, write_float32, write_int8
    from .tiny_model import MODELS_DIR, P, PINK, PURPLE, copy_models
except ImportError:  # imported as a top-level module, with tests/ on the path (conftest does that)
    from make_tiny_models import fit_and_export, save_models, write_float32, write_int8
    from tiny_model import MODELS_DIR, P, PINK, PURPLE, copy_models

OUTPUT_STRIDE = 5
INT8, FLOAT32, INT8_INPUT = "dense_int8", "dense_float32", "dense_int8_input"


def blended_patches(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 ``[n, 50, 50, 3]`` noisy pink/purple blends and their purple share in [0, 1]."""
    rng = np.random.default_rng(seed)
    t = rng.random(n).astype(np.float32)
    base = (1 - t[:, None]) * np.array(PINK, np.float32) + t[:, None] * np.array(PURPLE, np.float32)
    x = base[:, None, None, :] + rng.normal(0, 18, (n, P, P, 3))
    return np.clip(x, 0, 255).astype(np.uint8), t


def dense_model_files(out_dir: Path, names: tuple[str, ...] = (INT8, FLOAT32)) -> tuple[Path, ...]:
    """Copy committed dense models (default: the int8 and float32 pair) with their sidecars to
    ``out_dir``; returns their paths in the order of ``names``."""
    return copy_models(out_dir, names, "python -m tests.dense_model")


def make_dense_models(out_dir: str | os.PathLike, threshold: float = 0.5) -> tuple[Path, Path, Path]:
    """Train and convert the tiny dense model; returns (int8, float32, int8 with int8 input: raw bytes
    minus 128) paths, sidecars written."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x, y = blended_patches(512)
    saved = fit_and_export(lambda: [
        keras.layers.Conv2D(8, OUTPUT_STRIDE, strides=OUTPUT_STRIDE, activation="relu"),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Conv2D(1, 8, activation="sigmoid"),  # the head sees exactly one window
    ], x, y.reshape(-1, 1, 1, 1), 8, out)
    int8_path = write_int8(saved, x[:128], out / f"{INT8}.tflite")
    float_path = write_float32(saved, out / f"{FLOAT32}.tflite")
    spec = ModelSpec(threshold=threshold, float_model=float_path.name, dense=DenseSpec(OUTPUT_STRIDE),
                     provenance={"data": "synthetic pink/purple blends, soft targets",
                                 "made_by": "python -m tests.dense_model"})
    write_spec(int8_path, spec)
    write_spec(float_path, ModelSpec(threshold=threshold, dense=DenseSpec(OUTPUT_STRIDE), provenance=spec.provenance))
    int8_input = write_int8(saved, x[:128], out / f"{INT8_INPUT}.tflite", input_type="int8")
    write_spec(int8_input, spec)
    return int8_path, float_path, int8_input


def main(argv: list[str]) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        save_models(make_dense_models(tmp), Path(argv[0]) if argv else MODELS_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
