"""A tiny IDC-like model made in seconds for tests: dark purple patches are "IDC".

The model is trained on synthetic colour patches (no data from ../shared), exported to
int8 (uint8 input, raw RGB bytes) and float32 TFLite by the project's own converter
(:mod:`convert.ptq`, :mod:`convert.tflite`), each with a sidecar.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from idc_edge.spec import ModelSpec, write_spec

P = 50
PINK = (230, 170, 200)    # RGB, light eosin-like: class 0
PURPLE = (110, 60, 140)   # RGB, dark haematoxylin-like: class 1


def synthetic_patches(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 ``[n, 50, 50, 3]`` noisy pink (label 0) or purple (label 1) patches."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    base = np.where(y[:, None] == 1, np.array(PURPLE), np.array(PINK)).astype(np.float32)
    x = base[:, None, None, :] + rng.normal(0, 18, (n, P, P, 3))
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)


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
    int8_path = out / "tiny_int8.tflite"
    int8_path.write_bytes(full_integer(saved_model_converter(saved), x[:128], input_type="uint8"))
    float_path = out / "tiny_float32.tflite"
    float_path.write_bytes(float32(saved))
    spec = ModelSpec(threshold=threshold, float_model=float_path.name,
                     provenance={"data": "synthetic pink/purple patches", "made_by": "tests/tiny_model.py"})
    write_spec(int8_path, spec)
    write_spec(float_path, ModelSpec(threshold=threshold, provenance=spec.provenance))
    return int8_path, float_path


if __name__ == "__main__":
    # Bootstrap: `python tests/tiny_model.py idc_edge/models` ships the tiny model as the default
    # until a trained one exists (idc-edge info then says BOOTSTRAP).
    import json
    import shutil
    import sys
    import tempfile

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "idc_edge/models")
    with tempfile.TemporaryDirectory() as tmp:
        int8, f32 = make_tiny_models(tmp)
        for src, name in ((int8, "idc_int8"), (f32, "idc_float32")):
            shutil.copy(src, target / f"{name}.tflite")
            spec = json.loads(src.with_suffix(".json").read_text())
            spec["float_model"] = "idc_float32.tflite" if name == "idc_int8" else None
            spec["provenance"]["summary"] = "BOOTSTRAP model: tiny CNN on synthetic colours, not for diagnosis"
            (target / f"{name}.json").write_text(json.dumps(spec, indent=2) + "\n")
