"""Make the tiny test models committed in ``tests/models/`` (needs TensorFlow, the [train] extra).

    python -m tests.make_tiny_models [OUT_DIR]

A small CNN is trained for a few seconds on synthetic pink (no IDC) and purple (IDC) patches (no
data from ../shared) and converted by the project's own converter (:mod:`convert.ptq`,
:mod:`convert.tflite`) to int8 (uint8 input, raw RGB bytes) and float32 TFLite, each with a
sidecar. Runtime tests then load these files and need no TensorFlow.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from idc_edge.spec import ModelSpec, write_spec

try:
    from .tiny_model import FLOAT32, INT8, MODELS_DIR, P, synthetic_patches
except ImportError:  # imported as a top-level module, with tests/ on the path (conftest does that)
    from tiny_model import FLOAT32, INT8, MODELS_DIR, P, synthetic_patches


def make_tiny_models(out_dir: str | os.PathLike, threshold: float = 0.5) -> tuple[Path, Path]:
    """Train and convert the tiny model; returns (int8 path, float32 path)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from convert.ptq import full_integer
    from convert.tflite import export_saved_model, float32, saved_model_converter

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((P, P, 3)),
        keras.layers.Rescaling(1 / 255.0),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(keras.optimizers.Adam(0.01), "binary_crossentropy")
    x, y = synthetic_patches(512)
    model.fit(x.astype(np.float32), y, epochs=6, batch_size=32, verbose=0)

    saved = export_saved_model(model, out / "saved")
    int8_path = out / f"{INT8}.tflite"
    int8_path.write_bytes(full_integer(saved_model_converter(saved), x[:128], input_type="uint8"))
    float_path = out / f"{FLOAT32}.tflite"
    float_path.write_bytes(float32(saved))
    spec = ModelSpec(threshold=threshold, float_model=float_path.name,
                     provenance={"data": "synthetic pink/purple patches", "made_by": "python -m tests.make_tiny_models"})
    write_spec(int8_path, spec)
    write_spec(float_path, ModelSpec(threshold=threshold, provenance=spec.provenance))
    return int8_path, float_path


def main(argv: list[str]) -> int:
    import shutil
    import tempfile

    target = Path(argv[0]) if argv else MODELS_DIR
    with tempfile.TemporaryDirectory() as tmp:
        int8, f32 = make_tiny_models(tmp)
        target.mkdir(parents=True, exist_ok=True)
        for path in (int8, f32):
            for f in (path, path.with_suffix(".json")):
                shutil.copyfile(f, target / f.name)
                print(f"{target / f.name} ({f.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
