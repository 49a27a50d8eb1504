"""Choose the exposure, colour and noise gates' thresholds from data: clean validation fields against camera conditions.

Real fields (500×300 px at 4 µm/px, the validation patients' rebuilt slides, every field with at
least 20 % tissue) are measured clean and under the exposure, low-light and colour-cast
conditions of ``benchmarks.camera_conditions``:

- **white level**: the 99th percentile of grey (what :class:`idc_edge.focus.ExposureOptions`'s
  ``min_white`` judges). The data set's fields always hold some bright glass, lumen or fat; an
  under-exposed camera (without a white profile) moves it down with the tissue's colours.
- **glass cast**: :func:`idc_edge.colour.glass_cast` of the field (the largest relative departure
  of a channel of the glass's chromaticity from the training glass's), where the field shows glass.
- **noise**: :func:`idc_edge.noise.glass_noise` of the field (σ in grey levels on its glass
  interior), where the field shows enough glass; the data set's glass is nearly noiseless, sensor
  noise (``noise``, ``noise_camera``, ``low_light``) raises it. The model's agreement under the
  same conditions is ``benchmarks.camera_conditions``'s.
- **tissue noise**: :func:`idc_edge.noise.tissue_noise` of the field (σ per channel along the
  tissue's least varying colour direction), where the field shows enough tissue: what judges the
  noise of a field without glass. Its share flagged is given over all fields and over those
  without glass to judge (``noise_flagged_no_glass``), and the gate's (either above its threshold).

Prints the clean fields' lowest values and percentiles, each condition's, and the false-alarm
rate of the chosen thresholds on clean fields.

    python -m benchmarks.camera_gates [--data ../shared/idc_patches]

Writes ``benchmarks/camera_conditions_report/gates.json`` (numbers only).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from benchmarks.camera_conditions import cases, slide_fields  # noqa: E402
from idc_edge.colour import glass_cast  # noqa: E402
from idc_edge.dataset import VALIDATION_PATIENTS, default_data_dir  # noqa: E402
from idc_edge.focus import ColourOptions, ExposureOptions, NoiseOptions  # noqa: E402
from idc_edge.noise import glass_noise, tissue_noise  # noqa: E402
from idc_edge.tissue import tissue_pixels  # noqa: E402
from idc_edge.jsonready import dumps  # noqa: E402

FAMILIES = ("exposure", "exposure_low", "low_light", "cast", "cast_warm", "cast_green", "cast_magenta",
            "usb_camera", "vignetting", "gamma", "gamma_low", "jpeg", "noise", "noise_camera", "overexposure",
            "defocus", "dust")


def measure(rgb: np.ndarray) -> tuple[float, float, float, float]:
    """(white level, glass cast, glass noise, tissue noise) of an **RGB** field at the model's scale, as the
    gates measure them."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    options = NoiseOptions()
    return (float(np.percentile(grey, 99)), glass_cast(rgb), glass_noise(grey, rgb, options.min_glass_px),
            tissue_noise(rgb, tissue_pixels(rgb), options.min_tissue_px))


def gate_cost(fields, repeats: int = 15) -> dict:
    """CPU ms per 1080p frame at 1 µm/px (a field enlarged 4×, stride 25): ``detect`` with the colour
    gate on and off and with the noise gate on and off, interleaved in one run, and each measure
    alone on the model-scale frame."""
    import time

    from idc_edge.detector import Detector

    field = max(fields, key=lambda f: f.rgb.shape[0] * f.rgb.shape[1]).rgb
    frame = cv2.resize(cv2.cvtColor(field, cv2.COLOR_RGB2BGR), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    frame = np.ascontiguousarray(frame[:1080, :1920])
    small = cv2.resize(field, (480, 270), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    tissue = tissue_pixels(small)
    times: dict[str, list] = {k: [] for k in ("all_on", "colour_off", "noise_off", "glass_cast", "glass_noise",
                                              "tissue_noise")}
    with Detector(um_per_px=1.0, stride=25) as d_on, \
            Detector(um_per_px=1.0, stride=25, colour=ColourOptions(enabled=False)) as d_colour_off, \
            Detector(um_per_px=1.0, stride=25, noise=NoiseOptions(enabled=False)) as d_noise_off:
        runs = (("all_on", lambda: d_on.detect(frame)), ("colour_off", lambda: d_colour_off.detect(frame)),
                ("noise_off", lambda: d_noise_off.detect(frame)), ("glass_cast", lambda: glass_cast(small)),
                ("glass_noise", lambda: glass_noise(grey, small)),
                ("tissue_noise", lambda: tissue_noise(small, tissue)))
        for _, fn in runs:
            fn()
        for _ in range(repeats):
            for name, fn in runs:
                t = time.process_time()
                fn()
                times[name].append(time.process_time() - t)
    ms = {k: 1000 * float(np.median(v)) for k, v in times.items()}
    return {"detect_all_gates_ms": ms["all_on"], "detect_colour_off_ms": ms["colour_off"],
            "detect_noise_off_ms": ms["noise_off"], "glass_cast_ms": ms["glass_cast"],
            "glass_noise_ms": ms["glass_noise"], "tissue_noise_ms": ms["tissue_noise"],
            "frame": "1920x1080 at 1 um/px, stride 25"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "camera_conditions_report" / "gates.json"))
    ap.add_argument("--fields-per-patient", type=int, default=40)
    args = ap.parse_args(argv)
    fields = slide_fields(args.data, sorted(VALIDATION_PATIENTS), per_patient=args.fields_per_patient,
                          min_tissue=0.2, seed=7)
    min_white, max_cast = ExposureOptions().min_white, ColourOptions().max_glass_cast
    max_noise, max_tissue_noise = NoiseOptions().max_noise, NoiseOptions().max_tissue_noise
    rows = {}
    rng = np.random.default_rng(0)

    def summary(name, values):
        white = np.array([v[0] for v in values])
        cast = np.array([v[1] for v in values])
        noise = np.array([v[2] for v in values])
        tissue = np.array([v[3] for v in values])
        judged = cast[~np.isnan(cast)]
        noisy = noise[~np.isnan(noise)]
        on_tissue = tissue[~np.isnan(tissue)]
        no_glass = np.isnan(noise)
        either = (noise > max_noise) | (tissue > max_tissue_noise)
        rows[name] = {"white_min": float(white.min()), "white_p5": float(np.percentile(white, 5)),
                      "white_median": float(np.median(white)),
                      "cast_median": float(np.median(judged)) if judged.size else None,
                      "cast_p95": float(np.percentile(judged, 95)) if judged.size else None,
                      "cast_max": float(judged.max()) if judged.size else None,
                      "glass_judged": float(judged.size / len(cast)),
                      "too_dark": float((white < min_white).mean()),
                      "cast_flagged": float((judged > max_cast).sum() / len(cast)),
                      "noise_median": float(np.median(noisy)) if noisy.size else None,
                      "noise_p5": float(np.percentile(noisy, 5)) if noisy.size else None,
                      "noise_p95": float(np.percentile(noisy, 95)) if noisy.size else None,
                      "noise_max": float(noisy.max()) if noisy.size else None,
                      "noise_judged": float(noisy.size / len(noise)),
                      "noise_flagged": float((noisy > max_noise).sum() / len(noise)),
                      "tissue_noise_median": float(np.median(on_tissue)) if on_tissue.size else None,
                      "tissue_noise_p5": float(np.percentile(on_tissue, 5)) if on_tissue.size else None,
                      "tissue_noise_p95": float(np.percentile(on_tissue, 95)) if on_tissue.size else None,
                      "tissue_noise_min": float(on_tissue.min()) if on_tissue.size else None,
                      "tissue_noise_max": float(on_tissue.max()) if on_tissue.size else None,
                      "tissue_noise_judged": float(on_tissue.size / len(tissue)),
                      "tissue_noise_flagged": float((on_tissue > max_tissue_noise).sum() / len(tissue)),
                      "noise_gate_flagged": float(either.mean()),
                      "no_glass": float(no_glass.mean()),
                      "noise_gate_flagged_no_glass": float(either[no_glass].mean()) if no_glass.any() else None}
        r = rows[name]
        print(f"{name:40s} white min {r['white_min']:.0f} p5 {r['white_p5']:.0f} med {r['white_median']:.0f} | "
              f"cast med {r['cast_median']} p95 {r['cast_p95']} max {r['cast_max']} judged {r['glass_judged']:.2f} | "
              f"too dark {r['too_dark']:.3f} cast flagged {r['cast_flagged']:.3f} | noise med {r['noise_median']} "
              f"p95 {r['noise_p95']} max {r['noise_max']} judged {r['noise_judged']:.2f} "
              f"flagged {r['noise_flagged']:.3f} | tissue noise med {r['tissue_noise_median']} "
              f"p5 {r['tissue_noise_p5']} p95 {r['tissue_noise_p95']} max {r['tissue_noise_max']} | noise gate "
              f"flagged {r['noise_gate_flagged']:.3f}, without glass ({r['no_glass']:.2f}) "
              f"{r['noise_gate_flagged_no_glass']}", flush=True)

    summary("clean", [measure(f.rgb) for f in fields])
    per_patient = {}
    for f in fields:
        per_patient.setdefault(f.patient, []).append(measure(f.rgb))
    false_alarms = {p: float(np.mean([(w < min_white) or (c > max_cast) or (n > max_noise) or (t > max_tissue_noise)
                                      for w, c, n, t in v]))
                    for p, v in per_patient.items()}
    for c in cases():
        if c.family in FAMILIES:
            summary(f"{c.family} {c.label}", [measure(c.apply(f.rgb, rng)) for f in fields])
    cost = gate_cost(fields)
    print("cost per 1080p frame:", {k: (round(v, 2) if isinstance(v, float) else v) for k, v in cost.items()})
    out = {"cost": cost, "fields": len(fields), "patients": sorted(per_patient), "min_white": min_white,
           "max_glass_cast": max_cast, "max_noise": max_noise,
           "max_tissue_noise": max_tissue_noise, "clean_false_alarm_per_patient": false_alarms, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(dumps(out, indent=1))
    print("clean false alarms per patient:", {p: round(v, 3) for p, v in false_alarms.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
