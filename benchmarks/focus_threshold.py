"""Choose the focus gate's thresholds from data: accuracy and sharpness against defocus.

Validation patches (the literature's validation patients present in the data) are blurred by
``train.camera_sim.defocus`` (a Gaussian point-spread function of σ µm at 4 µm/px, borders
reflected), classified by the shipped int8 model, and measured with :mod:`idc_edge.focus`'s
sharpness on their tissue pixels. The frame threshold is the sharpness at the blur where the
model's IDC recall has fallen to ``--recall-floor`` (default 0.80, interpolated between blur
levels); one patch's sharpness is noisier than a frame's, so the patch threshold is taken where
recall has fallen to ``--patch-recall-floor`` (default 0.50). Every condition family of
``train.camera_sim.CONDITIONS`` is then measured too: the share of its patches each threshold
would wrongly take the call from (noise, JPEG, exposure and casts must not look like blur).

    python -m benchmarks.focus_threshold [--data ../shared/idc_patches] [--out benchmarks/focus_report]

Writes ``report.json`` (every number) and ``chart.png`` (curves only, no image pixels). The committed
``benchmarks/focus_report/`` is the shipped model's; the gate's defaults were chosen on the first-generation
model (see :class:`idc_edge.focus.FocusOptions`).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from idc_edge.classifier import PatchClassifier  # noqa: E402
from idc_edge.dataset import VALIDATION_PATIENTS, default_data_dir, load_patches, scan_dataset  # noqa: E402
from idc_edge.focus import image_sharpness  # noqa: E402
from idc_edge.metrics import binary_metrics  # noqa: E402
from idc_edge.tissue import tissue_pixels  # noqa: E402
from train.camera_sim import CONDITIONS, apply_to_batch, defocus  # noqa: E402

SIGMAS_UM = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


def patch_sharpness(images: np.ndarray, min_tissue_px: int = 200) -> np.ndarray:
    """Sharpness per RGB patch over its tissue pixels (NaN with too little tissue)."""
    out = np.full(len(images), np.nan, np.float32)
    for i, img in enumerate(images):
        mask = tissue_pixels(img)
        if mask.sum() >= min_tissue_px:
            out[i] = image_sharpness(img, mask)
    return out


def crossing(xs, ys, level: float) -> float:
    """The x where ``ys`` (falling along ``xs``) first drops to ``level``, linearly interpolated."""
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if y0 >= level > y1:
            return x0 + (y0 - level) / (y0 - y1) * (x1 - x0)
    return float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "focus_report"))
    ap.add_argument("--recall-floor", type=float, default=0.80)
    ap.add_argument("--patch-recall-floor", type=float, default=0.50)
    ap.add_argument("--max-patches", type=int, default=0, help="use at most N patches (0 = all)")
    ap.add_argument("--condition-patches", type=int, default=1000,
                    help="patches (a fixed random sample) for the other camera conditions (0 = all)")
    args = ap.parse_args(argv)
    records = [r for r in scan_dataset(args.data) if r.patient in VALIDATION_PATIENTS]
    if args.max_patches:
        rng = np.random.default_rng(0)
        records = [records[i] for i in sorted(rng.choice(len(records), args.max_patches, replace=False))]
    loaded = load_patches(records)
    labels = loaded.labels
    rows = []
    started = time.monotonic()
    with PatchClassifier() as clf:
        for sigma in SIGMAS_UM:
            blurred = loaded.images if sigma == 0 else np.stack(
                [defocus(img, sigma_um=sigma, um_per_px=4.0) for img in loaded.images])
            scores = clf.predict(blurred)
            m = binary_metrics(labels, scores, clf.spec.threshold)
            sharp = patch_sharpness(blurred)
            ok = ~np.isnan(sharp)
            q = np.percentile(sharp[ok], [5, 25, 50, 75, 95])
            rows.append({"sigma_um": sigma, "balanced_accuracy": m.balanced_accuracy, "recall_idc": m.recall_1,
                         "recall_no_idc": m.recall_0, "sharpness_p5": float(q[0]), "sharpness_p25": float(q[1]),
                         "sharpness_median": float(q[2]), "sharpness_p75": float(q[3]), "sharpness_p95": float(q[4]),
                         "sharpness_idc_median": float(np.nanmedian(sharp[labels == 1])),
                         "judged_patches": int(ok.sum()), "_sharp": sharp})
            print(f"σ {sigma:4.1f} µm: balanced acc {m.balanced_accuracy:.3f}, IDC recall {m.recall_1:.3f}, "
                  f"sharpness median {q[2]:.3f} (p5 {q[0]:.3f}, p95 {q[4]:.3f})", flush=True)
    sig = [r["sigma_um"] for r in rows]
    collapse_sigma = crossing(sig, [r["recall_idc"] for r in rows], args.recall_floor)
    # sharpness median at that blur, interpolated along the (falling) median curve
    frame_threshold = float(np.interp(collapse_sigma, sig, [r["sharpness_median"] for r in rows]))
    patch_sigma = crossing(sig, [r["recall_idc"] for r in rows], args.patch_recall_floor)
    patch_threshold = float(np.interp(patch_sigma, sig, [r["sharpness_median"] for r in rows]))

    def below(sharp: np.ndarray) -> dict:
        ok = sharp[~np.isnan(sharp)]
        return {"median": round(float(np.median(ok)), 3),
                "share_below_frame_threshold": round(float(np.mean(ok < frame_threshold)), 4),
                "share_below_patch_threshold": round(float(np.mean(ok < patch_threshold)), 4)}

    flagged = {f"defocus σ {r['sigma_um']:g} µm": below(r["_sharp"]) for r in rows}
    rng = np.random.default_rng(1)
    sample = loaded.images
    if args.condition_patches and args.condition_patches < len(sample):
        sample = sample[np.sort(rng.choice(len(sample), args.condition_patches, replace=False))]
    for family, severities in CONDITIONS.items():
        for sev in severities:
            flagged[f"{family}: {sev.label}"] = below(patch_sharpness(apply_to_batch(sev, sample, rng)))
    for name, v in flagged.items():
        print(f"  {name:40s} median {v['median']:.3f}  below frame {v['share_below_frame_threshold']:.3f}  "
              f"below patch {v['share_below_patch_threshold']:.3f}")
    report = {
        "what": "shipped int8 model on validation patches blurred by train.camera_sim.defocus (Gaussian σ µm at 4 µm/px)",
        "patches": int(len(labels)), "idc_patches": int(labels.sum()),
        "recall_floor": args.recall_floor, "collapse_sigma_um": round(collapse_sigma, 3),
        "patch_recall_floor": args.patch_recall_floor, "patch_collapse_sigma_um": round(patch_sigma, 3),
        "frame_threshold": round(frame_threshold, 3), "patch_threshold": round(patch_threshold, 3),
        "flagged": flagged,
        "rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
        "seconds": round(time.monotonic() - started, 1),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    chart(rows, frame_threshold, patch_threshold, collapse_sigma, out / "chart.png")
    print(f"IDC recall falls to {args.recall_floor} at σ {collapse_sigma:.2f} µm: frame threshold {frame_threshold:.3f}; "
          f"to {args.patch_recall_floor} at σ {patch_sigma:.2f} µm: patch threshold {patch_threshold:.3f} (1/px); {out}")
    return 0


def chart(rows, frame_threshold, patch_threshold, collapse_sigma, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sig = [r["sigma_um"] for r in rows]
    fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=110)
    ax.plot(sig, [r["balanced_accuracy"] for r in rows], "o-", color="tab:blue", label="balanced accuracy")
    ax.plot(sig, [r["recall_idc"] for r in rows], "s-", color="tab:red", label="IDC recall")
    ax.plot(sig, [r["recall_no_idc"] for r in rows], "^-", color="tab:green", label="no-IDC recall")
    ax.axvline(collapse_sigma, color="grey", ls=":", lw=1)
    ax.set_xlabel("defocus, Gaussian σ (µm)")
    ax.set_ylabel("shipped int8 model, validation patches")
    ax.set_ylim(0, 1.02)
    ax2 = ax.twinx()
    ax2.fill_between(sig, [r["sharpness_p25"] for r in rows], [r["sharpness_p75"] for r in rows],
                     color="black", alpha=0.12, label="sharpness p25–p75")
    ax2.plot(sig, [r["sharpness_median"] for r in rows], "k--", label="sharpness median")
    ax2.axhline(frame_threshold, color="black", lw=0.8)
    ax2.axhline(patch_threshold, color="black", lw=0.8, ls="-.")
    ax2.text(sig[-1], frame_threshold, f" frame {frame_threshold:.2f}", va="bottom", ha="right", fontsize=8)
    ax2.text(sig[-1], patch_threshold, f" patch {patch_threshold:.2f}", va="top", ha="right", fontsize=8)
    ax2.set_ylabel("sharpness (1/px at 4 µm/px)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="lower left", fontsize=8)
    ax.set_title("Focus gate: where IDC recall collapses with defocus")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
