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


def load_keras_model(path: str | os.PathLike):
    """Load a trained Keras 3 model (``.keras``) for inference.

    Raises:
        ModelError: the file is missing or Keras cannot read it.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"trained model {str(path)!r} does not exist; pass --model PATH to a Keras .keras file "
                         "(training writes runs/<name>/model.keras)")
    try:
        return keras3().saving.load_model(str(path), compile=False)
    except Exception as e:  # Keras raises many kinds for unreadable files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"cannot load Keras model {str(path)!r}: {first}") from None
