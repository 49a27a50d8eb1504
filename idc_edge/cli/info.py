"""``idc-edge info``: backend, versions, the model and its sidecar."""
from __future__ import annotations

import json
import sys
from typing import Optional

from .. import __version__
from ..jsonready import dumps
from .options import path


def add_parser(sub) -> None:
    info = sub.add_parser("info", help="backend, versions, model and its sidecar")
    info.add_argument("--model", type=path("--model"), metavar="PATH", help="describe this model instead of the shipped one")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)


def describe(model: Optional[str] = None) -> dict:
    """What ``idc-edge info --json`` prints: backend, versions, model path and sidecar."""
    import cv2
    import numpy as np

    from ..backend import get_backend
    from ..classifier import PatchClassifier

    backend = get_backend()
    with PatchClassifier(model) as clf:
        spec = clf.spec.to_dict()
        model_info = {
            "path": str(clf.model_path), "size_bytes": clf.model_path.stat().st_size,
            "shipped_default": model is None,
            "input": {"dtype": str(clf.input_format.dtype), "scale": clf.input_format.scale,
                      "zero_point": clf.input_format.zero_point},
            "output": {"dtype": str(clf.output_format.dtype), "scale": clf.output_format.scale,
                       "zero_point": clf.output_format.zero_point},
            "sidecar": spec,
        }
    return {"idc_edge": __version__, "python": sys.version.split()[0], "numpy": np.__version__,
            "opencv": cv2.__version__, "backend": {"name": backend.name, "version": backend.version},
            "model": model_info}


def _text(value, limit: int = 60) -> str:
    """A sidecar's free-form provenance value for display: any JSON type, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value) -> str:
    """A metric to three decimals, or as given when the sidecar holds something else."""
    return f"{value:.3f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else _text(value, 20)


def cmd_info(args) -> int:
    info = describe(args.model)
    if args.json:
        print(dumps(info))
        return 0
    m = info["model"]
    sc = m["sidecar"]
    prov = sc.get("provenance", {})
    print(f"idc-edge {info['idc_edge']} (Python {info['python']}, numpy {info['numpy']}, OpenCV {info['opencv']})")
    print(f"backend   {info['backend']['name']} {info['backend']['version']}")
    print(f"model     {m['path']} ({m['size_bytes'] / 1024:.0f} KB){'  [shipped default]' if m['shipped_default'] else ''}")
    print(f"          input {m['input']['dtype']} {sc['patch_size_px']}x{sc['patch_size_px']} {sc['channel_order']}, "
          f"{sc['um_per_px']} um/px, threshold {sc['threshold']:.3f}")
    dense = sc.get("dense")
    if isinstance(dense, dict) and dense.get("output_stride_px"):
        s = dense["output_stride_px"]
        print(f"dense     one convolutional pass per frame, output stride {s} px: --stride must be a multiple of "
              f"{s} (--no-dense runs patch by patch)")
    else:
        print("dense     no (patch by patch; any --stride)")
    context = sc.get("context")
    if isinstance(context, dict) and "threshold" in context:
        print(f"context   each window decided with its neighbours' scores (sigma {_text(context.get('sigma_px'))} px, "
              f"weight {_text(context.get('weight'))}), threshold {_num(context['threshold'])} "
              "(--no-context decides each window alone)")
    if prov.get("summary"):
        print(f"          {_text(prov['summary'], 200)}")
    if prov.get("architecture") or prov.get("variant"):
        print(f"made      {_text(prov.get('architecture', '?'))} CNN, {_text(prov.get('variant', '?'))}"
              + (f", shipped {_text(prov['shipped'])[:10]}" if prov.get("shipped") else ""))
    data = prov.get("data")
    if isinstance(data, dict) and "train_patients" in data:
        print(f"data      {_text(data.get('train_patients'))} training / {_text(data.get('val_patients'))} validation "
              f"patients ({_text(data.get('split', 'patient split'))})")
    for label, key in (("validation", "validation_metrics"), ("  in field", "validation_metrics_in_field"),
                       ("  float32", "validation_metrics_float")):
        vm = prov.get(key)
        if isinstance(vm, dict) and "balanced_accuracy" in vm:
            print(f"{label:<9} balanced accuracy {_num(vm.get('balanced_accuracy'))}, recall no IDC "
                  f"{_num(vm.get('recall_0'))}, recall IDC {_num(vm.get('recall_1'))}, ROC AUC {_num(vm.get('roc_auc'))} "
                  f"({_text(vm.get('n_patches'))} patches)")
    return 0
