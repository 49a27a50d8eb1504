"""Real-time performance report: every real-time benchmark in one run, as Markdown, JSON and a chart.

    python -m benchmarks.perf_report                         # the shipped model, full run (~5 min)
    python -m benchmarks.perf_report --quick                 # fewer sizes and rounds (~1–2 min)
    python -m benchmarks.perf_report --model runs/x/model_int8.tflite --keras runs/x/model.keras

Writes ``report.md``, ``report.json`` and ``chart.png`` to ``--out`` (default
``reports/performance``) and exits with 1 when a large-regression guard fails (ratios only).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from benchmarks import perf  # noqa: E402
from idc_edge.jsonready import dumps  # noqa: E402

TARGETS = (
    # (what, how to read it from the report, target, unit, higher is better)
    ("int8 vs float32 TFLite per patch (batch 64, 1 thread)", lambda r: r["ratios"].get("int8_vs_float32"), 2.0, "x"),
    ("int8 vs Keras float predict per patch (batch 64, 1 thread)", lambda r: r["ratios"].get("int8_vs_keras"), 10.0, "x"),
    ("1920×1080 @ 1.0 µm/px, stride 25, mask on, 1 thread: fps without drawing",
     lambda r: _frame(r, 1920, 1080, 1.0, 25, True, "fps"), 60.0, "fps"),
    ("... with the overlay drawn on the full frame",
     lambda r: _frame(r, 1920, 1080, 1.0, 25, True, "fps_with_overlay"), 30.0, "fps"),
    ("pipeline overhead: detect() / bare interpreter patches per second (model-scale frame)",
     lambda r: r["ratios"].get("overhead_efficiency"), 0.85, ""),
    ("... the same for a 1920×1080 frame at 1 µm/px (4× rescale included)",
     lambda r: r["ratios"].get("overhead_efficiency_with_rescale"), 0.85, ""),
    ("`idc-edge run` peak resident memory (MB, no display, moving stage)",
     lambda r: _stream(r, "threaded (default)", "peak_rss_mb"), perf.MEMORY_BUDGET_MB, "MB<"),
    ("... with `--save-video` `.avi` (MJPG) / `.mp4` (mp4v), threaded, the larger",
     lambda r: _max(_stream(r, "threaded + overlay video", "peak_rss_mb"),
                    _stream(r, "threaded + overlay video .mp4", "peak_rss_mb")), perf.MEMORY_BUDGET_MB, "MB<"),
    ("... with `--save-video` `.mkv` (HuffYUV, lossless), threaded",
     lambda r: _stream(r, "threaded + overlay video .mkv", "peak_rss_mb"), perf.MEMORY_BUDGET_MB, "MB<"),
    ("`idc-edge run` first result after process start (s)", lambda r: r["startup"]["first_result_s"], 1.5, "s<"),
    ("... on the first run with this model (no cached model-probe verdict)",
     lambda r: r["startup"].get("first_result_cold_s"), 1.5, "s<"),
    ("dense pass vs patches, same model, `detect()` CPU, 1920×1080 @ 1 µm/px, stride 25, mask on",
     lambda r: r["ratios"].get("dense_vs_patch"), 2.5, "x"),
    ("... mask off (every window classified)", lambda r: r["ratios"].get("dense_vs_patch_mask_off"), 2.5, "x"),
)


def _frame(r, w, h, um, stride, mask, key):
    for row in r.get("frames", []):
        if (row["width"], row["height"], row["um_per_px"], row["stride"], row["mask"]) == (w, h, um, stride, mask):
            return row[key]
    return None


def _stream(r, mode, key):
    for row in r.get("stream", []):
        if row["mode"] == mode:
            return row[key]
    return None


def _max(*values):
    """The largest of the values measured (None when none was)."""
    measured = [v for v in values if v is not None]
    return max(measured) if measured else None


def _met(value, target, unit) -> str:
    if value is None:
        return "not measured"
    ok = value <= target if unit.endswith("<") else value >= target
    return "**met**" if ok else "not met"


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"# idc-edge real-time performance{' (quick run)' if r['quick'] else ''}", "",
             f"Measured {r['date']} on **{m['cpu']}**{' (' + m['board'] + ')' if m.get('board') else ''}, "
             f"{m['cores']} cores, {m['system']}, Python {m['python']}, {m['backend']}, OpenCV {m['opencv']}, "
             f"numpy {m['numpy']}. Other jobs may share the machine: compared numbers are measured "
             "interleaved in the same run, and ratios are medians of per-round ratios.", "",
             f"Model: `{r['model']['int8']}` ({r['model']['int8_kb']} KB)"
             + (f" — {r['model']['summary']}" if r['model'].get('summary') else "")
             + (f"; float32 twin `{r['model']['float32']}`" if r['model'].get('float32') else "")
             + f"; {r['keras_model']}.", "",
             "## Targets", "", "| target | measured | goal | |", "|---|---|---|---|"]
    for what, get, target, unit in TARGETS:
        try:
            v = get(r)
        except (KeyError, TypeError):
            v = None
        shown = "—" if v is None else (f"{v:.2f}" if unit != "" else f"{100 * v:.0f} %")
        goal = f"{'≤' if unit.endswith('<') else '≥'} {target:g}{unit.rstrip('<') if unit not in ('', 'fps') else ''}" \
            if unit != "" else f"≥ {100 * target:.0f} %"
        lines.append(f"| {what} | {shown} | {goal} | {_met(v, target, unit)} |")
    lines += ["", "## 1. Patch latency (ms per 50×50 patch, median)", "",
              "| model | batch | threads | ms/patch | patches/s |", "|---|---:|---:|---:|---:|"]
    for p in r["patch"]:
        lines.append(f"| TFLite {p['model']} | {p['batch']} | {p['threads']} | {p['ms_per_patch']:.4f} | "
                     f"{p['patches_per_s']:.0f} |")
    for k in r.get("keras", []):
        for b, v in k["batches"].items():
            lines.append(f"| Keras predict | {b} | {k['threads']} | {v['keras_predict']:.4f} | "
                         f"{1000 / v['keras_predict']:.0f} |")
            lines.append(f"| Keras `model(x)` | {b} | {k['threads']} | {v['keras_call']:.4f} | "
                         f"{1000 / v['keras_call']:.0f} |")
    lines += ["", "Same-run ratios (how many times faster int8 is):", ""]
    for key, v in r["int8_vs_float32"].items():
        lines.append(f"- vs float32 TFLite, {key.replace('_', ', ')}: **{v:.2f}×**")
    for k in r.get("keras", []):
        for b, v in k["batches"].items():
            lines.append(f"- vs Keras predict, batch {b}, threads {k['threads']}: **{v['int8_vs_keras_predict']:.1f}×** "
                         f"(vs calling the Keras model directly: {v['int8_vs_keras_call']:.1f}×)")
    lines += ["", "## 2. Frame latency, end to end, one interpreter thread (ms, median)", "",
              f"Frames: {', '.join(r['frame_source'])}. Decode = reading the frame from an MJPG video, "
              "reported apart and not in fps. Rescale includes BGR→RGB; tiling includes choosing patches.", "",
              "| frame | µm/px | stride | mask | tissue/patches | decode | rescale | mask | tiling | invoke | post | "
              "total | overlay | fps | fps + overlay |",
              "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for f in r["frames"]:
        lines.append(f"| {f['width']}×{f['height']} | {f['um_per_px']:.1f} | {f['stride']} | "
                     f"{'on' if f['mask'] else 'off'} | {f['tissue_patches']:.0f}/{f['patches']} | {f['decode_ms']:.2f} | "
                     f"{f['rescale_ms']:.2f} | {f['mask_ms']:.2f} | {f['tiling_ms']:.2f} | {f['invoke_ms']:.2f} | "
                     f"{f['post_ms']:.2f} | {f['detect_ms']:.2f} | {f['overlay_ms']:.2f} | {f['fps']:.0f} | "
                     f"{f['fps_with_overlay']:.0f} |")
    lines += ["", "### Motion-aware reuse: still vs moving stage (1920×1080 at 1 µm/px, stride 25)", "",
              "| sequence | reused | ms/frame reuse on | ms/frame reuse off | speed-up | max score difference |",
              "|---|---:|---:|---:|---:|---:|"]
    for x in r["reuse"]:
        lines.append(f"| {x['sequence']} | {100 * x['reused_fraction']:.0f} % | {x['ms_reuse']:.2f} | "
                     f"{x['ms_no_reuse']:.2f} | {x['speedup']:.2f}× | {x['max_score_error']:.3f} |")
    lines += ["", "## 3. Pipeline overhead", "", "| frame | patches | bare interpreter patches/s | detect() patches/s | "
              "share of bare |", "|---|---:|---:|---:|---:|"]
    for o in r["overhead"]:
        lines.append(f"| {o['case']} | {o['patches']} | {o['bare_patches_per_s']:.0f} | "
                     f"{o['pipeline_patches_per_s']:.0f} | {100 * o['efficiency']:.0f} % |")
    lines += ["", "## 4. Stream throughput: `idc-edge run` over a 1920×1080 MJPG video (1 µm/px, stride 25)", "",
              f"Decoding alone: {r['decode_fps']:.0f} fps. fps = frames per second from the first result to the "
              "last (start-up excluded).", "",
              "| mode | frames | fps | first result (s) | peak memory (MB) |", "|---|---:|---:|---:|---:|"]
    for s in r["stream"]:
        lines.append(f"| {s['mode']} | {s['frames']} | {s['fps']:.1f} | {s['first_result_s']:.2f} | "
                     f"{s['peak_rss_mb']:.0f} |")
    st = r["startup"]
    lines += ["", "## 5. Start-up", "", f"`{st['command']}`: first result {st['first_result_s']:.2f} s after process "
              f"start (median of 3; {st.get('first_result_cold_s', float('nan')):.2f} s on a first run, before the model "
              f"probe's verdict is cached), whole process {st['wall_s']:.2f} s, peak memory {st['peak_rss_mb']:.0f} MB."]
    lines += _work_section(r)
    lines += ["", "## Guards (large regressions of ratios only)", "", "| guard | value | lowest allowed | holds |",
              "|---|---:|---:|---|"]
    for g in r["guards"]:
        v = "—" if g["value"] is None else f"{g['value']:.2f}"
        lines.append(f"| {g['what']} | {v} | {g['lowest']:g} | "
                     f"{'skipped' if g['ok'] is None else ('yes' if g['ok'] else '**NO**')} |")
    return "\n".join(lines) + "\n"


def _work_section(r: dict) -> list[str]:
    """Section 6: MACs per frame, the dense pass against patches, and estimated frame rates."""
    w = r.get("work")
    if not w:
        return []
    lines = ["", "## 6. Work per frame (1920×1080 at 1 µm/px, stride 25)", "",
             f"{w['windows']} windows, {w['macs_per_patch'] / 1e6:.2f} M multiply-accumulates per 50×50 patch "
             "(counted from the model's convolution and fully connected ops). Patch path: "
             f"**{w['patch_macs'] / 1e6:,.0f} M MACs** per frame (every window, mask off)"
             + (f"; dense path: **{w['dense_macs'] / 1e6:,.0f} M** in {w['dense_passes']} passes "
                f"(the frame and its edge strips): **{w['ratio']:.2f}× fewer**." if w.get("dense_macs")
                else "; the model has no dense pass.")]
    if r.get("dense"):
        lines += ["", "Same model, same frames, interleaved, this process's CPU time per frame (median):", "",
                  "| mask | tissue / windows | `detect()` dense | patches | speed-up | model step dense | patches | "
                  "speed-up |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for d in r["dense"]:
            lines.append(f"| {'on' if d['mask'] else 'off'} | {d['tissue_patches']:.0f} / {d['patches']} | "
                         f"{d['dense_cpu_ms']:.2f} ms | {d['patch_cpu_ms']:.2f} ms | **{d['speedup']:.2f}×** | "
                         f"{d['dense_model_cpu_ms']:.2f} ms | {d['patch_model_cpu_ms']:.2f} ms | "
                         f"{d['model_speedup']:.2f}× |")
    if r.get("projections"):
        eff = 100 * r.get("assumed_efficiency", 0.5)
        lines += ["", f"**Estimates, not measurements**: frames per second of the model alone (no rescale, mask, "
                      f"decoding or drawing), from each device's published CPU clock and int8 multiply-accumulates "
                      f"per cycle, assuming LiteRT reaches {eff:.0f} % of that peak and threads scale linearly:", "",
                  "| device | threads | patch path fps | dense path fps |", "|---|---:|---:|---:|"]
        for p in r["projections"]:
            dense = f"{p['dense_fps']:,.0f}" if p.get("dense_fps") else "—"
            lines.append(f"| {p['device']} | {p['threads']} | {p['patch_fps']:,.1f} | {dense} |")
        lines += ["", "Sources:"] + [f"- {d['name']} ({d['cpu']}, {d['ghz']} GHz, {d['int8_macs_per_cycle']} int8 "
                                     f"MACs/cycle/core): " + "; ".join(d["sources"]) for d in r.get("devices", [])]
    return lines


def chart(r: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    labels, values = [], []
    for p in r["patch"]:
        if p["threads"] == 1:
            labels.append(f"{p['model']}\nb{p['batch']}")
            values.append(p["ms_per_patch"])
    for k in r.get("keras", []):
        if k["threads"] == 1:
            for b, v in k["batches"].items():
                labels.append(f"Keras\nb{b}")
                values.append(v["keras_predict"])
    ax.bar(range(len(values)), values, color=["tab:green" if "int8" in lab else "tab:blue" if "float32" in lab
                                               else "tab:gray" for lab in labels])
    ax.set_xticks(range(len(values)), labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("ms per patch (log), 1 thread")
    ax.set_title("1. patch latency")
    ax = axes[1]
    rows = [f for f in r["frames"] if f["mask"] and f["stride"] == 25]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [f["fps"] for f in rows], 0.4, label="detect")
    ax.bar(x + 0.2, [f["fps_with_overlay"] for f in rows], 0.4, label="detect + overlay")
    ax.axhline(60, color="tab:red", ls="--", lw=1)
    ax.axhline(30, color="tab:orange", ls="--", lw=1)
    ax.set_xticks(x, [f"{f['width']}×{f['height']}\n{f['um_per_px']:g} µm/px" for f in rows], fontsize=8)
    ax.set_yscale("log")  # 640×480 runs at >1000 fps; 1080p must stay readable against the 30/60 lines
    ax.set_ylabel("frames per second (log), 1 thread")
    ax.set_title("2. frames, stride 25, mask on")
    ax.legend(fontsize=8)
    ax = axes[2]
    reuse = r["reuse"]
    x = np.arange(len(reuse))
    ax.bar(x - 0.2, [q["ms_no_reuse"] for q in reuse], 0.4, label="reuse off")
    ax.bar(x + 0.2, [q["ms_reuse"] for q in reuse], 0.4, label="reuse on")
    ax.set_xticks(x, [f"{q['sequence']} stage" for q in reuse])
    ax.set_ylabel("ms per 1920×1080 frame")
    ax.set_title("motion-aware reuse")
    ax.legend(fontsize=8)
    fig.suptitle(f"idc-edge on {r['machine']['cpu']} ({r['machine']['cores']} cores)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf_report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="int8 model (default: the shipped one); its sidecar names the float32 twin")
    ap.add_argument("--keras", help="Keras float model of the same network (default: runs/default/model.keras, "
                                    "a model.keras next to --model, or the sidecar's architecture untrained)")
    ap.add_argument("--quick", action="store_true", help="fewer sizes, rounds and frames")
    ap.add_argument("--out", default=str(ROOT / "reports" / "performance"), help="output folder")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = perf.measure(args.model, args.keras, quick=args.quick,
                          progress=lambda s: print(f"perf: {s}", file=sys.stderr, flush=True))
    (out / "report.json").write_text(dumps(report, indent=1) + "\n")
    (out / "report.md").write_text(markdown(report))
    chart(report, out / "chart.png")
    print(markdown(report))
    failed = [g for g in report["guards"] if g["ok"] is False]
    for g in failed:
        print(f"perf: GUARD FAILED: {g['what']} ({g['value']:.2f} < {g['lowest']:g})", file=sys.stderr)
    print(f"perf: report in {out}/report.md, report.json, chart.png", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
