"""The tiny IDC-like test model: dark purple patches are "IDC", light pink ones are not.

The model files are committed in ``tests/models/`` (a few KB, made by
``python -m tests.make_tiny_models``), so runtime tests need no TensorFlow; :func:`tiny_model_files`
copies them where a test may change them. The synthetic patches are what it was trained on.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

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


MODELS_DIR = Path(__file__).resolve().parent / "models"
INT8, FLOAT32 = "tiny_int8", "tiny_float32"


def copy_models(out_dir: Path, names: tuple[str, ...], made_by: str) -> tuple[Path, ...]:
    """Copy committed models ``names`` (``tests/models/<name>.tflite`` with sidecars) to ``out_dir``,
    where a test may change them; returns their paths in order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        for suffix in (".tflite", ".json"):
            src = MODELS_DIR / f"{name}{suffix}"
            if not src.is_file():
                raise FileNotFoundError(f"{src} is missing: run `{made_by}` (needs TensorFlow)")
            shutil.copyfile(src, out_dir / src.name)
        paths.append(out_dir / f"{name}.tflite")
    return tuple(paths)


def tiny_model_files(out_dir: Path) -> tuple[Path, Path]:
    """Copy the committed tiny models with their sidecars to ``out_dir``; returns (int8, float32) paths."""
    int8, float32 = copy_models(out_dir, (INT8, FLOAT32), "python -m tests.make_tiny_models")
    return int8, float32
