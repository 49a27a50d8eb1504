"""Keras → TFLite converters for the reference variants (float32, float16, dynamic-range int8).

Every function takes a TensorFlow SavedModel folder (see :func:`export_saved_model`) and returns
the ``.tflite`` bytes. Full-integer quantization lives in :mod:`convert.ptq`.
"""
from __future__ import annotations

import os
from pathlib import Path

from . import kerasenv


def export_saved_model(model, out_dir: str | os.PathLike) -> Path:
    """Export a Keras 3 model as a TensorFlow SavedModel (serving signature) in ``out_dir``."""
    out = Path(out_dir)
    model.export(str(out), format="tf_saved_model", verbose=False)
    return out


def saved_model_converter(saved_dir: str | os.PathLike):
    """A fresh ``TFLiteConverter`` for a SavedModel folder."""
    return kerasenv.tf().lite.TFLiteConverter.from_saved_model(str(saved_dir))


def float32(saved_dir: str | os.PathLike) -> bytes:
    """The float32 TFLite model: no quantization, the reference for every drop."""
    return saved_model_converter(saved_dir).convert()


def float16(saved_dir: str | os.PathLike) -> bytes:
    """Weights stored as float16 (half the size), computed in float32 on CPUs."""
    tf = kerasenv.tf()
    conv = saved_model_converter(saved_dir)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_types = [tf.float16]
    return conv.convert()


def dynamic_range_int8(saved_dir: str | os.PathLike) -> bytes:
    """int8 weights, float32 activations and input (quantized on the fly per batch); no calibration."""
    tf = kerasenv.tf()
    conv = saved_model_converter(saved_dir)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    return conv.convert()
