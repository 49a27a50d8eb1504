"""The one place that imports TensorFlow, Keras 3, tf_keras and tfmot, in an order that works.

TensorFlow 2.21 ships Keras 3 as ``keras``; tensorflow-model-optimization 0.8.1 only quantizes
Keras 2 (``tf_keras``) models, and importing it sets ``TF_USE_LEGACY_KERAS=1`` for the whole
process, which silently turns ``tf.keras`` into ``tf_keras``. So this package never uses
``tf.keras``: it imports ``keras`` (Keras 3, the trained model) and ``tf_keras`` (the QAT twin)
by name, and imports tfmot only when quantization-aware training is asked for.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from idc_edge.errors import ModelError
from idc_edge.fileio import open_input

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@lru_cache(maxsize=1)
def tf():
    """The ``tensorflow`` module."""
    import tensorflow

    return tensorflow


@lru_cache(maxsize=1)
def keras3():
    """Keras 3 (the ``keras`` package), in which training saves ``model.keras``."""
    import keras

    if not keras.__version__.startswith("3."):
        raise ModelError(f"expected Keras 3 as `keras`, found {keras.__version__}; install tensorflow==2.21.*")
    return keras


@lru_cache(maxsize=1)
def tf_keras():
    """Keras 2 (the ``tf_keras`` package), the only Keras tfmot 0.8.1 quantizes."""
    import tf_keras as k2

    return k2


@lru_cache(maxsize=1)
def tfmot():
    """``tensorflow_model_optimization``; importing it sets ``TF_USE_LEGACY_KERAS=1`` process-wide."""
    keras3()  # bind Keras 3 first, by name
    import tensorflow_model_optimization

    return tensorflow_model_optimization


ZIP_MAGIC = b"PK\x03\x04"
"""A Keras 3 ``.keras`` file is a zip archive: its first four bytes."""

_TRAINED_HINT = "pass the model.keras written by python -m train"


def check_keras_file(path: str | os.PathLike) -> Path:
    """Cheap checks of a ``--model`` before TensorFlow or the data: a file, and a zip (``.keras``) one.

    Raises:
        ModelError: naming what is wrong (missing, a folder, empty, not a zip).
    """
    path = Path(path)
    if path.is_dir():
        raise ModelError(f"--model {str(path)!r} is a folder, not a Keras .keras file; {_TRAINED_HINT} "
                         f"(e.g. {str(path / 'model.keras')!r})")
    if not os.path.exists(path):
        raise ModelError(f"trained model {str(path)!r} does not exist; pass --model PATH to a Keras .keras file "
                         "(training writes runs/<name>/model.keras)")
    # opened without blocking and refused unless a regular file: a device, FIFO or socket is named as
    # what it is (Path.is_file() called /dev/zero and a FIFO "does not exist")
    try:
        fd = open_input(path, "--model", ModelError)
    except ModelError as e:
        raise ModelError(f"{e}; {_TRAINED_HINT}") from None
    try:
        head = os.read(fd, len(ZIP_MAGIC))
    except OSError as e:
        raise ModelError(f"cannot read --model {str(path)!r}: {e.strerror or e}") from None
    finally:
        os.close(fd)
    if head != ZIP_MAGIC:
        what = "is empty" if not head else "is not a Keras .keras file (zip)"
        raise ModelError(f"--model {str(path)!r} {what}; {_TRAINED_HINT}")
    return path


def check_input_shape(model, path: str | os.PathLike, patch_px: int = 50) -> None:
    """The trained model must take RGB patches: input ``[None, patch_px, patch_px, 3]`` (or
    ``[None, None, None, 3]`` for a fully convolutional one), one input.

    Raises:
        ModelError: naming the shape found.
    """
    shape = getattr(model, "input_shape", None)
    ok = (isinstance(shape, tuple) and len(shape) == 4 and shape[3] == 3
          and tuple(shape[1:3]) in ((patch_px, patch_px), (None, None)))
    if not ok:
        raise ModelError(f"--model {str(path)!r} takes input {list(shape) if isinstance(shape, tuple) else shape}; "
                         f"expected [None, {patch_px}, {patch_px}, 3] (RGB {patch_px}x{patch_px} patches); "
                         f"{_TRAINED_HINT}")


def load_keras_model(path: str | os.PathLike):
    """Load a trained Keras 3 model (``.keras``) for inference.

    Raises:
        ModelError: the file is missing, not a ``.keras`` zip, Keras cannot read it, or its input
            is not RGB 50x50 patches.
    """
    path = check_keras_file(path)
    try:
        model = keras3().saving.load_model(str(path), compile=False)
    except Exception as e:  # Keras raises many kinds for unreadable files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if first.startswith("File not found"):  # Keras's words for any zip it cannot read: the file is there
            first = "a zip, but not a Keras model Keras can read"
        raise ModelError(f"cannot load Keras model {str(path)!r}: {first}; {_TRAINED_HINT}") from None
    check_input_shape(model, path)
    return model
