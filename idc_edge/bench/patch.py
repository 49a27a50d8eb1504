"""Patch latency: the int8 model against its float32 twin, per batch size and thread count."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..classifier import PatchClassifier, resolve_model_path
from ..errors import ModelError
from ..fileio import is_regular_file, name, short
from ..spec import read_spec, sidecar_path
from .timing import interleaved


@dataclass(frozen=True)
class PatchLatency:
    """ms per patch of one model at one batch size and thread count (median over rounds)."""

    model: str
    dtype: str
    batch: int
    threads: int
    ms_per_patch: float
    patches_per_s: float


def float_twin(model_path: Optional[str]) -> Optional[Path]:
    """The float32 model with the same weights named by the sidecar's ``float_model``, if it exists;
    a name that is no file there is warned about (the float32 comparison is then left out)."""
    path = resolve_model_path(model_path)
    twin_name = read_spec(path).float_model
    if not twin_name:
        return None
    twin = path.parent / twin_name
    if is_regular_file(twin):
        return twin
    # a hostile name is no twin, not a crash; but said, never a float32 row silently missing
    warnings.warn(f"model sidecar {name(sidecar_path(path))}: float_model {short(twin_name)} is not a file next to "
                  "the model, so the float32 comparison is left out; fix float_model or put that model there",
                  stacklevel=2)
    return None


def model_kind(path: Path) -> str:
    """How a model is labelled in the tables, from its real input type: ``"int8"`` for an integer
    (uint8 or int8) input, else the input's dtype (``"float32"``)."""
    with PatchClassifier(path) as clf:
        fmt = clf.input_format
    return "int8" if fmt.quantized else str(fmt.dtype)


def models_to_time(model_path: Optional[str]) -> dict[str, Path]:
    """label → model file: the given (or shipped) model under its real kind, and its float32 twin
    named by the sidecar when that is another kind of model."""
    path = resolve_model_path(model_path)
    models = {model_kind(path): path}
    twin = float_twin(model_path)
    if twin is not None and twin != path:
        models.setdefault(_twin_kind(path, twin), twin)
    return models


def _twin_kind(path: Path, twin: Path) -> str:
    """:func:`model_kind` of the float twin ``twin`` of ``path``; its ModelError names the sidecar
    field that led there (``float_model``), not only the file."""
    try:
        return model_kind(twin)
    except ModelError as e:
        raise ModelError(f"model sidecar {name(sidecar_path(path))}, float_model: {e}") from None


def patch_latency(model_paths: dict[str, Path], batches: Sequence[int] = (1, 64),
                  threads: Sequence[int] = (1,), rounds: int = 7, min_round_s: float = 0.05,
                  seed: int = 0) -> tuple[list[PatchLatency], dict[tuple[int, int], dict[str, np.ndarray]]]:
    """Per-patch latency of each model (label → path), interleaved per (batch, threads).

    Returns:
        (rows, raw): raw[(batch, threads)][label] is seconds per call per round, for ratios.
    """
    rng = np.random.default_rng(seed)
    rows, raw = [], {}
    for t in threads:
        clfs = {label: PatchClassifier(path, num_threads=t, max_batch=max(64, max(batches)))
                for label, path in model_paths.items()}
        try:
            for b in batches:
                x = rng.integers(0, 256, (b, 50, 50, 3), dtype=np.uint8)
                timings = interleaved({label: (lambda c=c: c.predict(x)) for label, c in clfs.items()},
                                      rounds=rounds, min_round_s=min_round_s)
                raw[(b, t)] = timings
                for label, secs in timings.items():
                    ms = float(np.median(secs)) * 1000 / b
                    rows.append(PatchLatency(label, str(clfs[label].input_format.dtype), b, t, ms, 1000 / ms))
        finally:
            for c in clfs.values():
                c.close()
    return rows, raw
