"""Full-integer post-training quantization (PTQ): int8 weights and activations, integer input.

The model's first layer is ``Rescaling(1/255)``, so its input is raw RGB bytes 0–255. With
``uint8`` input the converter's input quantization is ``real = 1.0 * (q - 0)`` when the
calibration patches span 0..255, and the runtime then feeds camera bytes unchanged
(:func:`idc_edge.quant.is_identity_uint8`). Calibration data reaching 255 is common (white
background) but not guaranteed, so :func:`representative_batches` appends one range anchor, a
copy of the first patch with one pixel set to 0 and one to 255: it pins the input range to the
full byte range while moving no other tensor's range more than one pixel can.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from . import kerasenv

INPUT_TYPES = ("uint8", "int8")


def representative_batches(images: np.ndarray, anchor: bool = True) -> Callable[[], Iterator[list]]:
    """The converter's ``representative_dataset``: one float32 patch ``[1, 50, 50, 3]`` per step.

    Args:
        images: RGB uint8 ``[N, 50, 50, 3]`` from training patients only.
        anchor: append the 0/255 range anchor (see the module docstring).
    """
    if images.ndim != 4 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"representative images must be uint8 [N>0, H, W, 3], got {images.dtype} {list(images.shape)}")
    batches = [images[i:i + 1] for i in range(len(images))]
    if anchor:
        a = images[:1].copy()
        a[0, 0, 0, :] = 0
        a[0, 0, 1, :] = 255
        batches.append(a)

    def gen():
        for b in batches:
            yield [b.astype(np.float32)]

    return gen


def full_integer(converter, images: np.ndarray, input_type: str = "uint8", output_type: str | None = None) -> bytes:
    """Convert with int8 kernels only (``TFLITE_BUILTINS_INT8``) and integer input/output.

    Args:
        converter: a fresh ``tf.lite.TFLiteConverter`` (from a SavedModel or a QAT model).
        images: calibration patches, RGB uint8, training patients only.
        input_type: ``"uint8"`` (raw bytes go in) or ``"int8"``.
        output_type: ``"uint8"`` or ``"int8"``; same as ``input_type`` when None.

    Raises:
        ValueError: an unknown type.
    """
    output_type = output_type or input_type
    for what, t in (("input", input_type), ("output", output_type)):
        if t not in INPUT_TYPES:
            raise ValueError(f"{what} type must be one of {', '.join(INPUT_TYPES)}, got {t!r}")
    tf = kerasenv.tf()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_batches(images)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = getattr(tf, input_type)
    converter.inference_output_type = getattr(tf, output_type)
    return converter.convert()
