"""``idc-edge classify``: patch images or folders -> CSV of IDC probabilities."""
from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Sequence

from ..errors import SourceError
from .options import add_model_args


def add_parser(sub) -> None:
    cls = sub.add_parser("classify", help="patch images or folders -> CSV of IDC probabilities")
    cls.add_argument("paths", nargs="+", metavar="PATH", help="patch images (<= model patch size) or folders of them")
    add_model_args(cls)
    cls.add_argument("--out", metavar="CSV", help="write the CSV here (default: standard output)")
    cls.add_argument("--quiet", action="store_true", help="no progress bar")
    cls.set_defaults(func=cmd_classify)


def _patch_files(paths: Sequence[str]) -> list[Path]:
    from ..sources import IMAGE_SUFFIXES

    files: list[Path] = []
    for text in paths:
        p = Path(text)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise SourceError(f"folder {text!r} has no images")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise SourceError(f"{text!r} does not exist; pass patch images or folders of them")
    return files


def cmd_classify(args) -> int:
    import numpy as np

    from .. import validate
    from ..classifier import PatchClassifier
    from ..dataset import parse_patch_path, read_patch_rgb
    from ..errors import DatasetError
    from ..progress import Progress

    threshold = None if args.threshold is None else validate.probability("threshold", args.threshold)
    files = _patch_files(args.paths)
    with PatchClassifier(args.model, num_threads=args.threads) as clf:
        threshold = clf.spec.threshold if threshold is None else threshold
        size = clf.spec.patch_size_px
        out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
        progress = Progress("classify", enabled=None if not args.quiet else False)
        skipped = []
        try:
            writer = csv.writer(out)
            writer.writerow(["path", "patient", "label", "probability", "idc"])
            for start in range(0, len(files), 512):
                batch, kept = [], []
                for f in files[start:start + 512]:
                    try:
                        batch.append(read_patch_rgb(f, size))
                        kept.append(f)
                    except SourceError:
                        skipped.append(f)
                if batch:
                    probs = clf.predict(np.stack(batch))
                    for f, prob in zip(kept, probs):
                        try:
                            rec = parse_patch_path(f)
                            patient, label = rec.patient, rec.label
                        except DatasetError:
                            patient, label = "", ""
                        writer.writerow([str(f), patient, label, f"{prob:.6f}", int(prob >= threshold)])
                progress(min(start + 512, len(files)), len(files))
        finally:
            if out is not sys.stdout:
                out.close()
    if skipped:
        print(f"idc-edge: warning: skipped {len(skipped)} unreadable image(s) (corrupt or not images), "
              f"e.g. {skipped[0]}", file=sys.stderr)
    return 0
