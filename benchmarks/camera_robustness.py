"""Camera robustness: the model's accuracy on validation patients under simulated camera conditions.

    python -m benchmarks.camera_robustness                         # shipped int8 + float32 twin, every patch
    python -m benchmarks.camera_robustness --max-patches 3000      # a fixed, class-stratified subset
    python -m benchmarks.camera_robustness --model runs/x/model_int8.tflite --out reports/robustness_v2
    python -m benchmarks.camera_robustness --compare runs/a/model_int8.tflite runs/b/model_int8.tflite \
        --max-patches 3000 --families usb_camera defocus noise cast     # candidates side by side

Every condition family of ``train.camera_sim.CONDITIONS`` (defocus, disk defocus, sensor noise,
JPEG at the camera's scale, exposure, gamma, colour cast, scale, and whole USB cameras) is applied
at its three severities to the validation patients' patches (the literature's split, see
``../shared/README.md``), and the int8 model and its float32 twin score them at the int8 sidecar's
threshold. Each condition gets its own fixed random generator, so a run is reproducible.
``--compare`` scores several candidate models instead, each at its own sidecar's threshold
(chosen on clean validation patches: a device cannot re-tune it per condition); that is how
``train/EXPERIMENTS.md`` compares training recipes.

Writes ``report.md``, ``report.json`` and ``chart.png`` to ``--out`` (default
``reports/robustness``, not committed: it is made from the data set's pixels' scores) and exits
with 1 when the typical USB camera costs more than ``--margin`` points of balanced accuracy (the
target: 2). ``tests/test_bench_robustness.py`` is the fast CI guard on a fixed subset.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]

import numpy as np  # noqa: E402

from idc_edge.classifier import PatchClassifier, resolve_model_path  # noqa: E402
from idc_edge.cli.options import Parser, number, whole_number  # noqa: E402
from idc_edge.errors import IdcEdgeError, OptionError  # noqa: E402
from idc_edge.fileio import name, no_folder, why  # noqa: E402
from idc_edge.dataset import VALIDATION_PATIENTS, default_data_dir, load_patches, scan_dataset  # noqa: E402
from idc_edge.jsonready import utc_now  # noqa: E402
from idc_edge.metrics import binary_metrics  # noqa: E402
from idc_edge.spec import read_spec  # noqa: E402
from train.camera_sim import CONDITIONS, apply_to_batch  # noqa: E402

#: The condition the guard watches: a typical USB camera at 1 µm/px (mild blur, noise, 15 % cast,
#: JPEG 80), rescaled to the model's 4 µm/px.
GUARD_FAMILY, GUARD_SEVERITY = "usb_camera", 2
#: Largest loss of balanced accuracy (points) the guard allows under that condition: the target.
GUARD_MARGIN_POINTS = 2.0
#: The model's robustness targets: (family, severity, largest loss in points).
TARGETS = ((GUARD_FAMILY, GUARD_SEVERITY, GUARD_MARGIN_POINTS),
           ("defocus", 2, 3.0),     # Gaussian σ 4 µm = 1 px at the model's 4 µm/px
           ("noise", 2, 3.0))       # 250 e⁻ at white


@dataclass(frozen=True)
class ValidationPatches:
    """Validation patches in memory: RGB uint8 ``[N, 50, 50, 3]``, labels, and their patients."""

    images: np.ndarray
    labels: np.ndarray
    patients: tuple[str, ...]


def validation_patches(data_dir: Optional[str] = None, max_patches: Optional[int] = None,
                       seed: int = 0, balanced: bool = False) -> ValidationPatches:
    """The validation patients' patches; with ``max_patches``, a fixed subset with the classes in
    their overall proportion, or half and half with ``balanced`` (the same files every run: chosen
    by ``seed`` from the sorted list).

    Raises:
        FileNotFoundError: the data set is not there.
    """
    root = Path(data_dir) if data_dir else default_data_dir()
    if not root.is_dir():
        raise FileNotFoundError(f"data set not found at {root} (set IDC_DATA_DIR)")
    records = sorted(scan_dataset(root, sorted(VALIDATION_PATIENTS)), key=lambda r: r.path)
    if max_patches is not None and max_patches < len(records):
        rng = np.random.default_rng(seed)
        labels = np.array([r.label for r in records])
        chosen = []
        for cls in (0, 1):
            idx = np.flatnonzero(labels == cls)
            take = max_patches // 2 if balanced else int(round(max_patches * idx.size / labels.size))
            chosen.extend(rng.choice(idx, size=min(take, idx.size), replace=False).tolist())
        records = [records[i] for i in sorted(chosen)]
    loaded = load_patches(records)
    return ValidationPatches(loaded.images, loaded.labels, tuple(r.patient for r in loaded.records))


@dataclass(frozen=True)
class Row:
    """Metrics of one model under one condition; ``drop_points`` is clean minus this balanced
    accuracy in percentage points (positive = worse)."""

    model: str
    family: str
    severity: int           # 0 = clean, 1..3 = mild, moderate, severe
    condition: str
    balanced_accuracy: float
    recall_0: float
    recall_1: float
    roc_auc: float
    drop_points: float


def condition_rng(seed: int, family: str, severity: int) -> np.random.Generator:
    """A generator of its own for each condition, the same in every run and for every model."""
    families = sorted(CONDITIONS)
    return np.random.default_rng([seed, families.index(family) if family in families else 99, severity])


def evaluate(models: dict[str, str], data: ValidationPatches, families: Optional[Sequence[str]] = None,
             severities: Sequence[int] = (1, 2, 3), seed: int = 0, threshold: Optional[float] = None,
             progress=None, own_thresholds: bool = False) -> list[Row]:
    """Score ``data`` clean and under each condition with each model (label → path).

    Every model sees the very same altered pixels (each condition's images are made once). The
    threshold is ``threshold`` or the first model's sidecar threshold, for all models alike (an
    int8 model and its float32 twin); with ``own_thresholds`` each model's own sidecar's.
    """
    say = progress or (lambda text: None)
    first = next(iter(models.values()))
    common = read_spec(first).threshold if threshold is None else float(threshold)
    thresholds = {label: read_spec(path).threshold if own_thresholds else common for label, path in models.items()}
    classifiers = {label: PatchClassifier(path) for label, path in models.items()}
    chosen = list(families or CONDITIONS)
    unknown = sorted(set(chosen) - set(CONDITIONS))
    if unknown:
        raise OptionError(f"unknown condition families {', '.join(unknown)}; known: {', '.join(CONDITIONS)}",
                          option="families")
    rows: list[Row] = []
    clean: dict[str, float] = {}
    try:
        cases = [("clean", 0, "clean", None)] + [(f, s, CONDITIONS[f][s - 1].label, CONDITIONS[f][s - 1])
                                                 for f in chosen for s in severities]
        for family, severity, label, condition in cases:
            say(f"{family} {label}")
            images = data.images if condition is None else \
                apply_to_batch(condition, data.images, condition_rng(seed, family, severity))
            for name, clf in classifiers.items():
                m = binary_metrics(data.labels, clf.predict(images), thresholds[name])
                if severity == 0:
                    clean[name] = m.balanced_accuracy
                rows.append(Row(name, family, severity, label, m.balanced_accuracy, m.recall_0, m.recall_1,
                                m.roc_auc, 100.0 * (clean[name] - m.balanced_accuracy)))
    finally:
        for clf in classifiers.values():
            clf.close()
    return rows


def guard_row(rows: Sequence[Row], model: str) -> Row:
    """The guard's condition (typical USB camera) for ``model``."""
    return next(r for r in rows if r.model == model and r.family == GUARD_FAMILY and r.severity == GUARD_SEVERITY)


def markdown(rows: Sequence[Row], meta: dict) -> str:
    models = list(dict.fromkeys(r.model for r in rows))
    which = ("each model's own sidecar threshold" if meta.get("compare") else
             f"threshold {meta['threshold']:.3f} (the int8 sidecar's) for every model")
    lines = [f"# Camera robustness of `{meta['model']}`", "",
             f"{meta['n_patches']:,} patches of {meta['n_patients']} validation patients ({meta['n_idc']:,} IDC), "
             f"{which}; each condition from "
             "`train/camera_sim.py` applied with its own fixed random generator. Drop = clean minus condition, "
             f"in points of balanced accuracy. Measured {meta['date']}.", "",
             "| condition | severity | " + " | ".join(f"{m} bal. acc. | {m} drop | {m} recall no IDC / IDC"
                                                   for m in models) + " |",
             "|---|---|" + "---:|---:|---:|" * len(models)]
    by_case: dict[tuple, dict[str, Row]] = {}
    for r in rows:
        by_case.setdefault((r.family, r.severity, r.condition), {})[r.model] = r
    for (family, severity, condition), per_model in by_case.items():
        cells = []
        for m in models:
            r = per_model[m]
            cells.append(f"{r.balanced_accuracy:.3f} | {r.drop_points:+.1f} | {r.recall_0:.2f} / {r.recall_1:.2f}")
        name = "clean" if severity == 0 else f"{family}: {condition}"
        lines.append(f"| {name} | {severity or '-'} | " + " | ".join(cells) + " |")
    lines += ["", "Targets (loss of balanced accuracy, points):", ""]
    for family, severity, most in TARGETS:
        for m in models:
            r = next((r for r in rows if r.model == m and r.family == family and r.severity == severity), None)
            if r is not None:
                lines.append(f"- {m}, {family}: {r.condition}: {r.drop_points:.1f} (target <= {most:g}): "
                             + ("met" if r.drop_points <= most else "**not met**"))
    g = guard_row(rows, models[0])
    verdict = "holds" if g.drop_points <= meta["margin"] else "**FAILS**"
    lines += ["", f"Guard: {models[0]} under \"{g.condition}\" loses {g.drop_points:.1f} points "
                  f"(allowed: {meta['margin']:g}) — {verdict}."]
    return "\n".join(lines) + "\n"


def chart(rows: Sequence[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r.model for r in rows))
    families = [f for f in dict.fromkeys(r.family for r in rows) if f != "clean"]
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for ax, m in zip(axes[0], models):
        clean = next(r.balanced_accuracy for r in rows if r.model == m and r.severity == 0)
        x = np.arange(len(families))
        for s, colour in zip((1, 2, 3), ("tab:green", "tab:orange", "tab:red")):
            vals = [next((r.balanced_accuracy for r in rows if r.model == m and r.family == f and r.severity == s),
                         np.nan) for f in families]
            ax.bar(x + (s - 2) * 0.27, vals, 0.27, color=colour, label=("mild", "moderate", "severe")[s - 1])
        ax.axhline(clean, color="k", lw=1, label=f"clean {clean:.3f}")
        ax.axhline(clean - GUARD_MARGIN_POINTS / 100, color="k", lw=1, ls="--", label="clean − 2 points")
        ax.set_xticks(x, families, rotation=35, ha="right", fontsize=8)
        ax.set_ylim(0.4, 1.0)
        ax.set_ylabel("balanced accuracy")
        ax.set_title(m)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv=None) -> int:
    """The command line; a mistake (bad option, missing model or data, an output folder that cannot be
    written) is one line and exit 2."""
    try:
        return _main(argv)
    except IdcEdgeError as e:
        print(f"camera_robustness: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the report could not be written after all (disk full, folder removed)
        print(f"camera_robustness: error: cannot write the report: {why(e)}"
              + (f": {name(e.filename)}" if e.filename is not None else ""), file=sys.stderr)
        return 2


def out_folder(text: str) -> Path:
    """The report folder, made now (before minutes of scoring) so a file, an unwritable place or a
    missing parent is refused at once.

    Raises:
        OptionError: ``text`` names a file, or the folder cannot be made.
    """
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise OptionError(f"--out {no_folder(out)}: give a folder for the report", option="--out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OptionError(f"--out {name(out)}: the folder cannot be made ({why(e)}); give a folder you can write",
                          option="--out") from None
    return out


def _main(argv=None) -> int:
    ap = Parser(prog="python -m benchmarks.camera_robustness", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="int8 model (default: the shipped one); its sidecar names the float32 twin")
    ap.add_argument("--compare", nargs="+", metavar="MODEL",
                    help="score these models side by side instead, each at its own sidecar's threshold")
    ap.add_argument("--data", help="data set folder (default: $IDC_DATA_DIR or ../shared/idc_patches)")
    ap.add_argument("--max-patches", type=whole_number("--max-patches"),
                    help="a fixed class-stratified subset of this many patches")
    ap.add_argument("--families", nargs="+", choices=list(CONDITIONS), metavar="FAMILY",
                    help=f"condition families (default: all: {', '.join(CONDITIONS)})")
    ap.add_argument("--margin", type=number("--margin"), default=GUARD_MARGIN_POINTS,
                    help="points of balanced accuracy the typical USB camera may cost (default 2)")
    ap.add_argument("--seed", type=whole_number("--seed"), default=0, help="subset and noise seed, 0 or more")
    ap.add_argument("--out", default=str(ROOT / "reports" / "robustness"), help="output folder")
    args = ap.parse_args(argv)
    if args.compare and args.model:
        ap.error("give --model or --compare, not both")
    if args.max_patches is not None and args.max_patches < 2:
        ap.error(f"--max-patches must be >= 2 (one of each class), got {args.max_patches}")
    if not (math.isfinite(args.margin) and 0 <= args.margin <= 100):
        ap.error(f"--margin is points of balanced accuracy, 0 to 100, got {args.margin:g}")
    if args.seed < 0:
        ap.error(f"--seed must be 0 or more, got {args.seed}")
    out = out_folder(args.out)
    path = resolve_model_path(args.compare[0] if args.compare else args.model)
    if args.compare:
        models = {str(m): str(resolve_model_path(m)) for m in args.compare}
    else:
        models = {"int8": str(path)}
        twin = read_spec(path).float_model
        if twin and (path.parent / twin).is_file():
            models["float32"] = str(path.parent / twin)
    try:
        data = validation_patches(args.data, args.max_patches, args.seed)
    except FileNotFoundError as e:
        print(f"camera_robustness: {e}", file=sys.stderr)
        return 2
    families = args.families
    if families and GUARD_FAMILY not in families:
        families = [*families, GUARD_FAMILY]
    rows = evaluate(models, data, families, seed=args.seed, own_thresholds=bool(args.compare),
                    progress=lambda s: print(f"camera_robustness: {s}", file=sys.stderr, flush=True))
    meta = {"model": str(path), "models": models, "n_patches": int(len(data.labels)), "n_idc": int(data.labels.sum()),
            "n_patients": len(set(data.patients)), "threshold": read_spec(path).threshold, "margin": args.margin,
            "seed": args.seed, "max_patches": args.max_patches, "compare": bool(args.compare),
            "date": utc_now()}
    (out / "report.json").write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    (out / "report.md").write_text(markdown(rows, meta))
    chart(rows, out / "chart.png")
    print(markdown(rows, meta))
    g = guard_row(rows, next(iter(models)))
    print(f"camera_robustness: report in {out}/report.md, report.json, chart.png", file=sys.stderr)
    return 0 if guard_holds(g.drop_points, args.margin) else 1


def guard_holds(drop_points: float, margin: float) -> bool:
    """The guard holds only on a measured loss within the margin: a loss of NaN (no patches, one
    class only) is a failure, not a pass."""
    return bool(np.isfinite(drop_points) and drop_points <= margin)


if __name__ == "__main__":
    sys.exit(main())
