"""``idc-edge evaluate``: accuracy on labelled patches in the data set's layout."""
from __future__ import annotations

import sys

from ..jsonready import dumps
from .bindings import add_model_args
from .options import path, patient_id


def add_parser(sub) -> None:
    ev = sub.add_parser("evaluate", help="accuracy on labelled patches in the data set's layout")
    ev.add_argument("data_dir", type=path("DATA_DIR"), metavar="DATA_DIR", help="folder of <patient>/<0|1>/*.png (or one patient's folder)")
    add_model_args(ev)
    ev.add_argument("--patients", nargs="+", type=patient_id("--patients"), metavar="ID", help="evaluate only these patients")
    ev.add_argument("--validation", action="store_true",
                    help="evaluate only the literature's validation patients present in DATA_DIR")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from ..classifier import PatchClassifier
    from ..dataset import VALIDATION_PATIENTS
    from ..errors import DatasetError
    from ..evaluate import evaluate_folder
    from ..fileio import name
    from ..progress import Progress

    patients = args.patients
    if args.validation:
        patients = sorted(set(patients or VALIDATION_PATIENTS) & VALIDATION_PATIENTS)
        if not patients:
            raise DatasetError(f"--validation with --patients {' '.join(args.patients)[:80]}: none of them is one of "
                               "the literature's validation patients; drop --validation or pick validation patients")
    with PatchClassifier(args.model, num_threads=args.threads) as clf:
        ev = evaluate_folder(clf, args.data_dir, args.threshold, patients,
                             progress=Progress("evaluate", enabled=False if (args.quiet or args.json) else None),
                             context=not args.no_context)
    summary = ev.summary()
    unmatched = [p for p in (patients if args.patients else ()) if p not in ev.per_patient]
    if unmatched:  # some of the asked patients are not in the folder: say which, do not guess
        print(f"idc-edge: warning: {len(unmatched)} of the selected patient(s) have no patches in DATA_DIR: "
              f"{', '.join(unmatched[:8])[:200]}{', ...' if len(unmatched) > 8 else ''}", file=sys.stderr)
    if ev.skipped:
        print(f"idc-edge: warning: skipped {len(ev.skipped)} unreadable patch image(s) (corrupt, not images or "
              "larger than a patch), "
              f"e.g. {ev.skipped[0]}", file=sys.stderr)
    if ev.misnamed:
        first = ev.misnamed[0]
        print(f"idc-edge: warning: skipped {len(ev.misnamed)} file(s) that are not patches of the data set, e.g. "
              f"{name(first.path)} ({first.reason})", file=sys.stderr)
    absent = ev.metrics.absent_class()
    if absent is not None:
        present = "IDC (class 1)" if absent == 0 else "no IDC (class 0)"
        print(f"idc-edge: warning: DATA_DIR holds patches of one class only, {present}: balanced accuracy and "
              "ROC AUC are undefined (nan) and accuracy is that class's recall; evaluate on patches of both classes",
              file=sys.stderr)
    if args.json:
        print(dumps(summary))
        return 0
    print(f"{ev.metrics.n_patches} patches of {ev.n_patients} patient(s)"
          + (f", {len(ev.skipped)} unreadable skipped" if ev.skipped else "")
          + (f", {len(ev.misnamed)} misnamed skipped" if ev.misnamed else ""))
    _print_metrics("each patch alone", ev)
    if ev.in_field is not None:
        _print_metrics("in the field: each patch with its neighbours' scores, as `run` decides windows "
                       "(neighbours missing from DATA_DIR give no context)", ev.in_field)
    return 0


def _print_metrics(title: str, ev) -> None:
    m = ev.metrics
    (tn, fp), (fn, tp) = m.confusion
    print(f"{title}, threshold {m.threshold:.3f}")
    for key in ("accuracy", "balanced_accuracy", "recall_0", "recall_1", "precision_1", "f1_1", "roc_auc"):
        print(f"  {key:<18} {getattr(m, key):.4f}")
    print(f"  confusion          [[tn {tn}, fp {fp}], [fn {fn}, tp {tp}]]")
    print("  per patient (patches, accuracy, balanced accuracy, recall 0, recall 1):")
    for p, pm in ev.per_patient.items():
        print(f"    {p:<8} {pm.n_patches:6d}  {pm.accuracy:.3f}  {pm.balanced_accuracy:.3f}  "
              f"{pm.recall_0:.3f}  {pm.recall_1:.3f}")
