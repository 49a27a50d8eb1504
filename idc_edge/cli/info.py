"""``idc-edge info``: backend, versions, the model and its sidecar."""
from __future__ import annotations

import json
import sys
from typing import Optional

from .. import __version__
from .evaluate import _json_safe


def add_parser(sub) -> None:
    info = sub.add_parser("info", help="backend, versions, model and its sidecar")
    info.add_argument("--model", metavar="PATH", help="describe this model instead of the shipped one")
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
        spec = clf.spec.to_json()
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


def cmd_info(args) -> int:
    info = describe(args.model)
    if args.json:
        print(json.dumps(_json_safe(info)))
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
    if prov.get("summary"):
        print(f"          {prov['summary']}")
    if prov.get("architecture") or prov.get("variant"):
        print(f"made      {prov.get('architecture', '?')} CNN, {prov.get('variant', '?')}"
              + (f", shipped {prov['shipped'][:10]}" if prov.get("shipped") else ""))
    data = prov.get("data")
    if isinstance(data, dict) and "train_patients" in data:
        print(f"data      {data.get('train_patients')} training / {data.get('val_patients')} validation patients "
              f"({data.get('split', 'patient split')})")
    for label, key in (("validation", "validation_metrics"), ("  float32", "validation_metrics_float")):
        vm = prov.get(key)
        if isinstance(vm, dict) and "balanced_accuracy" in vm:
            print(f"{label:<9} balanced accuracy {vm['balanced_accuracy']:.3f}, recall no IDC {vm['recall_0']:.3f}, "
                  f"recall IDC {vm['recall_1']:.3f}, ROC AUC {vm['roc_auc']:.3f} ({vm['n_patches']} patches)")
    return 0
