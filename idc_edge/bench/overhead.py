"""Pipeline overhead: the detector's patches per second against a bare interpreter loop."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..classifier import padded_batch, resolve_model_path
from .timing import interleaved, ratio


@dataclass(frozen=True)
class Overhead:
    """The detector's patches per second against a bare interpreter loop on the same patches."""

    case: str
    patches: int
    bare_patches_per_s: float
    pipeline_patches_per_s: float
    efficiency: float  # pipeline / bare, median of per-round ratios


def overhead(model_path: Optional[str], frame: np.ndarray, um_per_px: float, stride: int = 25, case: str = "",
             rounds: int = 9, threads: int = 1) -> Overhead:
    """How much of the bare interpreter's speed the whole ``detect`` keeps on ``frame``.

    The bare loop runs the same tissue patches, cut once beforehand, through interpreters of the
    same batch sizes the classifier uses (64 and the padded rest), with input arrays prepared in
    advance: only ``set_tensor``, ``invoke`` and ``get_tensor``. The detector runs patch by patch
    (``dense=False``) so both sides do the same work; the dense pass is compared with patches in
    :func:`~idc_edge.bench.work.dense_vs_patch`.
    """
    from ..backend import make_interpreter
    from ..detector import Detector
    from ..tiling import extract_patches

    with Detector(model_path=model_path, um_per_px=um_per_px, stride=stride, num_threads=threads,
                  dense=False) as det:
        r = det.detect(frame)
        rgb, grid, _ = det.prepare(frame)
        patches = extract_patches(rgb, grid, np.flatnonzero(r.tissue))
        x = det.classifier._prepare(patches)
        n = len(x)
        content = resolve_model_path(model_path).read_bytes()
        chunks, interps = [], {}
        for start in range(0, n, det.classifier.max_batch):
            part = x[start:start + det.classifier.max_batch]
            size = padded_batch(len(part), det.classifier.max_batch)
            if size != len(part):
                part = np.concatenate([part, np.zeros((size - len(part), *part.shape[1:]), part.dtype)])
            if size not in interps:
                it = make_interpreter(content, num_threads=threads, batch_size=size,
                                      patch_px=det.classifier.spec.patch_size_px)
                interps[size] = (it, it.get_input_details()[0]["index"], it.get_output_details()[0]["index"])
            chunks.append((interps[size], np.ascontiguousarray(part)))

        def bare():
            for (it, i, o), batch in chunks:
                it.set_tensor(i, batch)
                it.invoke()
                it.get_tensor(o)

        timings = interleaved({"bare": bare, "pipeline": lambda: det.detect(frame)}, rounds=rounds)
    return Overhead(case, n, n / float(np.median(timings["bare"])), n / float(np.median(timings["pipeline"])),
                    ratio(timings["bare"], timings["pipeline"]))
