"""How a trained model holds up under simulated camera conditions, on validation patients.

``python -m train.robustness MODEL.tflite [MODEL2.tflite ...] --data DIR`` scores a seeded sample of
validation patches clean and under each condition of :data:`CONDITIONS` (from
:mod:`train.camera_sim`), through the runtime's own :class:`idc_edge.classifier.PatchClassifier`,
at the threshold in the model's sidecar (chosen on clean validation patches: a device cannot re-tune
it per condition). Prints a Markdown table and writes JSON with ``--json``. No TensorFlow needed.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from idc_edge.classifier import PatchClassifier
from idc_edge.dataset import default_data_dir, load_patches, scan_dataset, split_by_patient
from idc_edge.errors import IdcEdgeError
from idc_edge.metrics import binary_metrics
from idc_edge.spec import read_spec

from . import camera_sim as cs

# The conditions the targets name, plus one moderate severity of every other family.
CONDITIONS: dict[str, cs.Condition] = {
    "clean": lambda x, rng: x,
    "usb_camera": cs.typical_usb_camera,
    "defocus_4um": cs.CONDITIONS["defocus"][1],
    "defocus_8um": cs.CONDITIONS["defocus"][2],
    "noise_250e": cs.CONDITIONS["noise"][1],
    "jpeg_70": cs.CONDITIONS["jpeg"][1],
    "exposure_0.5": cs.CONDITIONS["exposure"][2],
    "cast_20": cs.CONDITIONS["cast"][1],
    "scale_0.9": cs.CONDITIONS["scale"][1],
}


@dataclass(frozen=True)
class ConditionScore:
    """One model under one condition (threshold from the sidecar)."""

    condition: str
    balanced_accuracy: float
    recall_0: float
    recall_1: float
    roc_auc: float


def validation_sample(data: str, n: int, seed: int = 0):
    """A seeded sample of ``n`` validation-patient patches (RGB uint8) and their labels."""
    split = split_by_patient(scan_dataset(data))
    recs = list(split.val)
    rng = np.random.default_rng(seed)
    if n < len(recs):
        recs = [recs[i] for i in sorted(rng.choice(len(recs), n, replace=False))]
    loaded = load_patches(recs)
    return loaded.images, loaded.labels


def perturbed_sets(images: np.ndarray, names: Sequence[str], seed: int = 0) -> dict[str, np.ndarray]:
    """Each condition applied to every image once (the same noise for every model compared)."""
    return {name: cs.apply_to_batch(CONDITIONS[name], images, np.random.default_rng(seed)) for name in names}


def score(model: str | Path, sets: dict[str, np.ndarray], labels: np.ndarray) -> list[ConditionScore]:
    """Balanced accuracy, recalls and AUC of ``model`` on each perturbed set."""
    thr = read_spec(model).threshold
    out = []
    with PatchClassifier(model, num_threads=2) as clf:
        for name, images in sets.items():
            p = clf.predict(images)
            m = binary_metrics(labels, p, thr)
            out.append(ConditionScore(name, m.balanced_accuracy, m.recall_0, m.recall_1, m.roc_auc))
    return out


def markdown(results: dict[str, list[ConditionScore]]) -> str:
    """One row per model: balanced accuracy per condition, and the points lost against clean."""
    names = [s.condition for s in next(iter(results.values()))]
    lines = ["| model | " + " | ".join(names) + " |", "|---|" + "--:|" * len(names)]
    for model, scores in results.items():
        clean = scores[0].balanced_accuracy
        cells = [f"{s.balanced_accuracy:.3f}" + ("" if i == 0 else f" ({100 * (s.balanced_accuracy - clean):+.1f})")
                 for i, s in enumerate(scores)]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.robustness", description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help=".tflite models with sidecars")
    p.add_argument("--data", default=str(default_data_dir()))
    p.add_argument("--patches", type=int, default=3000, help="validation patches sampled (default 3000)")
    p.add_argument("--conditions", default=",".join(CONDITIONS), help="comma-separated subset of " + ",".join(CONDITIONS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the scores to this JSON file")
    args = p.parse_args(argv)
    names = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONDITIONS]
    if unknown:
        print(f"python -m train.robustness: error: unknown condition(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    if names[0] != "clean":
        names = ["clean"] + [n for n in names if n != "clean"]
    try:
        images, labels = validation_sample(args.data, args.patches, args.seed)
        sets = perturbed_sets(images, names, args.seed)
        results = {str(m): score(m, sets, labels) for m in args.models}
    except IdcEdgeError as e:
        print(f"python -m train.robustness: error: {e}", file=sys.stderr)
        return 2
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps({m: [asdict(s) for s in v] for m, v in results.items()}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
