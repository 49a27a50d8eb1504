"""Make the tiny test models committed in ``tests/models/`` (needs TensorFlow, the [train] extra).

    python -m tests.make_tiny_models [OUT_DIR]

A small CNN is trained for a few seconds on synthetic pink (no IDC) and purple (IDC) patches (no
data from ../shared) and converted by the project's own converter (:mod:`convert.ptq`,
:mod:`convert.tflite`) to int8 (uint8 input, raw RGB bytes) and float32 TFLite, each with a
sidecar. Runtime tests then load these files and need no TensorFlow.

Run twice, it writes the same bytes (tests/test_tiny_models_regenerate.py checks): the seed is set
before the layers are made (a Keras 3 initializer draws its seed when the layer is constructed, so
layers made before ``set_random_seed`` started from whatever the process's random state was), and
TensorFlow's ops are asked to be deterministic.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from idc_edge.spec import ModelSpec, write_spec

try:
    from .tiny_model import FLOAT32, INT8, MODELS_DIR, P, synthetic_patches
except ImportError:  # imported as a top-level module, with tests/ on the path (conftest does that)
    from tiny_model import FLOAT32, INT8, MODELS_DIR, P, synthetic_patches


def fit_and_export(make_layers: Callable[[], list], x: np.ndarray, y: np.ndarray, epochs: int, out: Path) -> Path:
    """Train ``keras.Sequential(make_layers())`` (after a 50×50×3 input and ``Rescaling(1/255)``) on
    RGB bytes ``x`` and targets ``y``, seeded and deterministic; returns its SavedModel folder in ``out``.

    ``make_layers`` is called after the seed is set: layers made earlier would carry initializer
    seeds drawn from the process's unseeded random state."""
    import keras

    from convert.kerasenv import tf
    from convert.tflite import export_saved_model

    tf().config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((P, P, 3)), keras.layers.Rescaling(1 / 255.0), *make_layers()])
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
    model.fit(x.astype(np.float32), y, epochs=epochs, batch_size=32, verbose=0)
    return export_saved_model(model, out / "saved")


def write_int8(saved: Path, calibration: np.ndarray, path: Path, input_type: str = "uint8") -> Path:
    """The project's int8 conversion of ``saved`` (see :func:`convert.ptq.full_integer`) to ``path``."""
    from convert.ptq import full_integer
    from convert.tflite import saved_model_converter

    path.write_bytes(full_integer(saved_model_converter(saved), calibration, input_type=input_type))
    return path


def write_float32(saved: Path, path: Path) -> Path:
    from convert.tflite import float32

    path.write_bytes(float32(saved))
    return path


def make_tiny_models(out_dir: str | os.PathLike, threshold: float = 0.5) -> tuple[Path, Path]:
    """Train and convert the tiny model; returns (int8 path, float32 path)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    x, y = synthetic_patches(512)
    saved = fit_and_export(lambda: [
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ], x, y, 6, out)
    int8_path = write_int8(saved, x[:128], out / f"{INT8}.tflite")
    float_path = write_float32(saved, out / f"{FLOAT32}.tflite")
    spec = ModelSpec(threshold=threshold, float_model=float_path.name,
                     provenance={"data": "synthetic pink/purple patches", "made_by": "python -m tests.make_tiny_models"})
    write_spec(int8_path, spec)
    write_spec(float_path, ModelSpec(threshold=threshold, provenance=spec.provenance))
    return int8_path, float_path


def save_models(paths, target: Path) -> None:
    """Copy models with their sidecars to ``target`` (``tests/models`` by default) and say so."""
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    for path in paths:
        for f in (path, path.with_suffix(".json")):
            shutil.copyfile(f, target / f.name)
            print(f"{target / f.name} ({f.stat().st_size} bytes)")


def main(argv: list[str]) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        save_models(make_tiny_models(tmp), Path(argv[0]) if argv else MODELS_DIR)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
