"""Decoding MJPG camera frames at reduced size: CPU per frame and agreement with full decoding.

A 1920×1080 camera at 1 µm/px sends JPEGs the detector shrinks 4× to the model's 4 µm/px. This
compares, interleaved frame by frame in one run (other jobs share the machine), the CPU time of

- **full**: ``cv2.imdecode`` at full size, then ``Detector(um_per_px=1.0).detect``, and
- **reduced**: ``cv2.imdecode(..., IMREAD_REDUCED_COLOR_4)``, then ``Detector(um_per_px=4.0).detect``,

on real slide frames (the data set's patient rebuilt as a slide, swept at 1 µm/px; JPEG quality
85 as a USB camera sends), and how often the two agree on tissue and on IDC decisions.

    python -m benchmarks.mjpeg_decode [--frames 40] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import cv2
import numpy as np


from idc_edge.dataset import default_data_dir  # noqa: E402
from idc_edge.detector import Detector  # noqa: E402
from idc_edge.sources import MosaicSource  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--patient", default="8867")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--stride", type=int, default=25)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    with MosaicSource(args.data, patients=[args.patient], width=1920, height=1080, um_per_px=1.0, step=480) as src:
        jpegs = [cv2.imencode(".jpg", f.image, [cv2.IMWRITE_JPEG_QUALITY, 85])[1] for _, f in zip(range(args.frames), src)]
    full_det = Detector(um_per_px=1.0, stride=args.stride, reuse=False)
    red_det = Detector(um_per_px=4.0, stride=args.stride, reuse=False)
    cpu = {"full": [], "reduced": []}
    decode = {"full": [], "reduced": []}
    tissue_agree = idc_agree = idc_both = idc_either = 0
    for i, buf in enumerate(jpegs):
        order = ("full", "reduced") if i % 2 == 0 else ("reduced", "full")
        results = {}
        for name in order:
            t0 = time.process_time()
            image = cv2.imdecode(buf, cv2.IMREAD_COLOR if name == "full" else cv2.IMREAD_REDUCED_COLOR_4)
            t1 = time.process_time()
            results[name] = (full_det if name == "full" else red_det).detect(image)
            t2 = time.process_time()
            cpu[name].append(t2 - t0)
            decode[name].append(t1 - t0)
        a, b = results["full"], results["reduced"]
        if a.tissue.shape != b.tissue.shape:
            raise SystemExit(f"grids differ: {a.tissue.shape} vs {b.tissue.shape}")
        tissue_agree += int((a.tissue == b.tissue).sum())
        both_tissue = a.tissue & b.tissue
        idc_agree += int((a.idc == b.idc)[both_tissue].sum())
        idc_both += int(both_tissue.sum())
        idc_either += int((a.idc | b.idc).sum())
    n_patches = sum(1 for _ in jpegs) * full_det.detect(cv2.imdecode(jpegs[0], cv2.IMREAD_COLOR)).tissue.size
    ms = {k: 1000 * float(np.median(v)) for k, v in cpu.items()}
    out = {
        "frames": len(jpegs), "frame": "1920x1080 JPEG q85 at 1 um/px", "stride": args.stride,
        "cpu_ms_per_frame": {k: round(v, 2) for k, v in ms.items()},
        "decode_ms_per_frame": {k: round(1000 * float(np.median(v)), 2) for k, v in decode.items()},
        "cpu_saving": round(1.0 - ms["reduced"] / ms["full"], 3),
        "tissue_agreement": round(tissue_agree / n_patches, 4),
        "idc_decision_agreement_on_tissue": round(idc_agree / max(idc_both, 1), 4),
        "idc_patches_full": int(idc_either),
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['frames']} frames, {out['frame']}, stride {args.stride}: CPU per frame full decode + detect "
              f"{ms['full']:.1f} ms, reduced (1/4) {ms['reduced']:.1f} ms: {100 * out['cpu_saving']:.0f} % less; "
              f"decode alone {out['decode_ms_per_frame']['full']} vs {out['decode_ms_per_frame']['reduced']} ms; "
              f"tissue mask agrees on {100 * out['tissue_agreement']:.1f} % of patches, IDC decisions on "
              f"{100 * out['idc_decision_agreement_on_tissue']:.1f} % of tissue patches")
    return 0


if __name__ == "__main__":
    sys.exit(main())
