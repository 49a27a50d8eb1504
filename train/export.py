"""Minimal TFLite export (float32 and int8 PTQ) and LiteRT latency, for comparing candidates.

The project's real quantization pipeline (PTQ/QAT reports) lives in ``convert/``; this module
only measures what a candidate costs as an int8 model and gives each training run a usable
``model_int8.tflite``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from idc_edge.errors import RecordError
from idc_edge.fileio import write_whole


def to_tflite(model, path: str | os.PathLike, representative: np.ndarray | None = None) -> Path:
    """Convert a Keras 3 model to ``path``: float32 when ``representative`` is None, else full int8.

    Args:
        model: Keras 3 model taking float ``[N, 50, 50, 3]`` RGB bytes 0–255.
        path: output ``.tflite`` file.
        representative: RGB patches ``[N, 50, 50, 3]`` (uint8, or byte values as floats) from
            TRAINING patients used to calibrate activation ranges (a few hundred are enough).

    The int8 model is made by the project's one recipe, :func:`convert.ptq.full_integer`: uint8
    input (raw RGB bytes, scale 1 and zero point 0 thanks to the ``Rescaling`` inside and the
    0/255 range anchor) and uint8 output (probability of IDC × 255, see the output's scale).
    """
    from convert.ptq import full_integer
    from convert.tflite import export_saved_model, float32, saved_model_converter

    path = Path(path)
    with tempfile.TemporaryDirectory(prefix="idc_export_") as tmp:
        saved = export_saved_model(model, os.path.join(tmp, "sm"))
        if representative is None:
            data = float32(saved)
        else:
            images = np.asarray(representative)
            if images.dtype != np.uint8:
                images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
            data = full_integer(saved_model_converter(saved), images, input_type="uint8")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_whole(path, data, "model", error=RecordError)  # never a cut model over a good one
    return path


def latency_ms_per_patch(path: str | os.PathLike, batch: int = 64, threads: int = 1, rounds: int = 3,
                         seed: int = 0) -> float:
    """Wall time per patch (ms) of one ``invoke`` on a batch of random patches.

    Timed by the runtime's own timer (:func:`idc_edge.bench.timing.interleaved`); the best of
    ``rounds`` rounds (other processes on a shared machine only ever add time).
    """
    from idc_edge.backend import make_interpreter
    from idc_edge.bench.timing import interleaved

    interp = make_interpreter(path, num_threads=threads, batch_size=batch)
    inp = interp.get_input_details()[0]
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (batch, 50, 50, 3), dtype=np.uint8)
    interp.set_tensor(inp["index"], x if inp["dtype"] == np.uint8 else x.astype(np.float32))
    seconds = interleaved({"invoke": interp.invoke}, rounds=rounds)["invoke"]
    return float(np.min(seconds)) * 1000.0 / batch
