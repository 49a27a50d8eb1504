"""Regenerate the golden outputs of the shipped models — only on purpose, after shipping a new model
or changing the runtime's pre/post-processing knowingly.

    python -m tests.golden.regenerate                 # from the repository root
    python -m tests.golden.regenerate --data ../shared/idc_patches

Writes ``tests/golden/shipped_models.json``: the probabilities the runtime
(:class:`idc_edge.classifier.PatchClassifier`) gives for the synthetic patches of
``tests/golden/patches.py`` and, when the data folder is there, for a fixed list of validation
patch FILE NAMES (names and probabilities only, never pixels), with the models' SHA-256.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path


import numpy as np  # noqa: E402

from idc_edge.backend import get_backend  # noqa: E402
from idc_edge.classifier import MODELS_DIR, PatchClassifier  # noqa: E402
from idc_edge.jsonready import utc_now  # noqa: E402
from idc_edge.dataset import default_data_dir, load_patches, scan_dataset, split_by_patient  # noqa: E402
from tests.golden.patches import golden_patches, patches_sha256  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "shipped_models.json"
MODELS = ("idc_int8.tflite", "idc_float32.tflite")
TOLERANCE = {"idc_int8.tflite": 0.008, "idc_float32.tflite": 0.001}
"""Largest allowed |p - golden|: two output steps (1/256) of the uint8 model; float32 leaves room
for other CPUs' float rounding only."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pick_real_files(data_dir: Path, probs_fn, n: int = 48, pool: int = 600, seed: int = 0) -> list[str]:
    """``n`` validation-patient patch paths (relative to ``data_dir``) spanning the int8 model's range."""
    val = sorted(split_by_patient(scan_dataset(data_dir)).val, key=lambda r: r.path)
    rs = np.random.RandomState(seed)
    cand = [val[i] for i in sorted(rs.choice(len(val), size=min(pool, len(val)), replace=False))]
    loaded = load_patches(cand)
    p = probs_fn(loaded.images)
    order = np.argsort(p, kind="mergesort")
    picks = order[np.linspace(0, len(order) - 1, n).round().astype(int)]
    return [str(Path(loaded.records[i].path).resolve().relative_to(data_dir.resolve())) for i in sorted(set(picks))]


def regenerate(data_dir: Path | None, models_dir: Path = MODELS_DIR, out: Path = GOLDEN) -> dict:
    paths = {m: models_dir / m for m in MODELS}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"error: shipped model(s) missing: {', '.join(missing)}")
    patches = golden_patches()
    clfs = {m: PatchClassifier(p, num_threads=1, max_batch=64) for m, p in paths.items()}
    real_files: list[str] = []
    real_images = None
    if data_dir is not None and data_dir.is_dir():
        real_files = pick_real_files(data_dir, clfs["idc_int8.tflite"].predict)
        real_images = load_patches([scan_one(data_dir / f) for f in real_files]).images
    b = get_backend()
    golden = {
        "about": "Runtime outputs of the shipped models; regenerate on purpose with `python -m tests.golden.regenerate`.",
        "generated": utc_now(),
        "runtime": f"{b.name} {b.version}",
        "patches": "tests/golden/patches.py golden_patches()",
        "patches_sha256": patches_sha256(patches),
        "real_files_relative_to": "the data folder ($IDC_DATA_DIR or ../shared/idc_patches)",
        "real_files": real_files,
        "models": {},
    }
    for m, clf in clfs.items():
        entry = {"sha256": sha256(paths[m]), "threshold": clf.spec.threshold, "tolerance": TOLERANCE[m],
                 "synthetic": [round(float(v), 6) for v in clf.predict(patches)]}
        if real_images is not None:
            entry["real"] = [round(float(v), 6) for v in clf.predict(real_images)]
        golden["models"][m] = entry
        clf.close()
    out.write_text(json.dumps(golden, indent=1) + "\n", encoding="utf-8")
    return golden


def scan_one(path: Path):
    from idc_edge.dataset import parse_patch_path

    return parse_patch_path(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.golden.regenerate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None, help="data folder (default: $IDC_DATA_DIR or ../shared/idc_patches)")
    ap.add_argument("--models", default=str(MODELS_DIR), help="folder of the shipped models (default: the package's)")
    ap.add_argument("--out", default=str(GOLDEN), help="golden file to write")
    args = ap.parse_args(argv)
    data = Path(args.data) if args.data else default_data_dir()
    g = regenerate(data if data.is_dir() else None, Path(args.models), Path(args.out))
    s = g["models"]["idc_int8.tflite"]["synthetic"]
    print(f"wrote {args.out} ({len(s)} synthetic patches, int8 p in [{min(s):.3f}, {max(s):.3f}]; "
          f"{len(g['real_files'])} real file names)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
