"""``python -m train``: train an IDC patch classifier on the data set's own layout.

Errors a user can cause (bad folder, bad option, a split without a class) are printed on one
line and the exit code is 2.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from idc_edge.cli.options import Parser, number, positive_int
from idc_edge.dataset import default_data_dir
from idc_edge.errors import IdcEdgeError

from . import architectures
from .config import AUGMENTATIONS, DEFAULT_AUGMENT, DEFAULT_TEACHER, PRESETS, AugmentStrength, parse_augment
from .run import CLASS_BALANCE, SELECT_METRICS, STRATEGIES, TrainConfig, run


def _augment(text: str) -> tuple[str, ...]:
    try:
        return parse_augment(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--augment: ")) from None


def _patients(text: str) -> tuple[str, ...]:
    path = Path(text)
    raw = path.read_text() if path.is_file() else text
    ids = tuple(p for p in raw.replace(",", " ").split() if p)
    if not ids:
        raise argparse.ArgumentTypeError("expected patient ids separated by commas or spaces, or a file of them")
    return ids


def _teacher(text: str) -> str | None:
    return None if text.strip().lower() in ("none", "") else text


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m train", description=(
        "Train the IDC patch classifier on <data>/<patient>/<0|1>/*.png, split by patient; choose the "
        "epoch and the decision threshold on the validation patients; write model.keras, an int8 "
        "model_int8.tflite with its sidecar, curves and a model card to --out."))
    p.add_argument("--data", default=str(default_data_dir()),
                   help="data folder in the data set's layout (default: $IDC_DATA_DIR or ../shared/idc_patches)")
    p.add_argument("--out", required=True, help="output folder (created), e.g. runs/default")
    p.add_argument("--arch", default=architectures.DEFAULT_ARCH, choices=architectures.names(),
                   help=f"architecture (default {architectures.DEFAULT_ARCH})")
    p.add_argument("--epochs", type=positive_int("--epochs"), default=20, help="training epochs (default 20)")
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=128, help="global batch size (default 128)")
    p.add_argument("--learning-rate", type=float, default=2e-3, help="peak AdamW learning rate (default 2e-3)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay (default 1e-4)")
    p.add_argument("--ema", type=float, default=0.995, metavar="MOMENTUM",
                   help="validate and keep an exponential moving average of the weights (default 0.995; "
                        "0 = off, e.g. for runs of a few dozen steps)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, shuffling, augmentation and weights")
    p.add_argument("--augment", type=_augment, default=DEFAULT_AUGMENT, metavar="LIST",
                   help=f"comma-separated subset of {','.join(AUGMENTATIONS)}, or a preset: "
                        + ", ".join(f"{k} ({','.join(v) or '-'})" for k, v in PRESETS.items())
                        + "; or a preset minus names, e.g. all-jpeg (the default)")
    p.add_argument("--stain-scale", type=number("--stain-scale"), default=AugmentStrength.stain_scale, metavar="S",
                   help=f"stain jitter: each H&E stain's optical density x U(1 - S, 1 + S), 0 <= S < 1 "
                        f"(default {AugmentStrength.stain_scale})")
    p.add_argument("--class-balance", choices=CLASS_BALANCE, default="weights",
                   help="'weights': weight each class by N / (2 N_class) in the loss (default)")
    p.add_argument("--select", choices=SELECT_METRICS, default="auc",
                   help="validation metric that chooses the epoch (default auc)")
    p.add_argument("--cache", default=None, metavar="memory|PATH",
                   help="cache decoded patches in memory, or in tf.data cache files PATH* on disk (use a fresh PATH "
                        "per data set: an existing cache is reused as is); default: stream from disk every epoch")
    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="'mirrored': all local GPUs (tf.distribute.MirroredStrategy); 'multiworker': several "
                        "machines, each started with its TF_CONFIG (MultiWorkerMirroredStrategy); --batch-size is global")
    p.add_argument("--logical-cpus", type=positive_int("--logical-cpus"), default=None, metavar="N",
                   help="split the CPU into N logical devices (to try --strategy mirrored without GPUs, as CI does)")
    p.add_argument("--val-patients", type=_patients, default=None, metavar="IDS|FILE",
                   help="validation patients (default: the literature's validation patients present, "
                        "else a seeded random --val-fraction of patients)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="fraction of patients for a random split")
    p.add_argument("--max-patches", type=positive_int("--max-patches"), default=None,
                   help="train on a seeded sample of at most N training patches (and N/2 validation ones); for quick checks")
    p.add_argument("--windows-per-patch", type=float, default=1.0, metavar="R",
                   help="add about R x (training patches) windows cut at random offsets from the patients' rebuilt "
                        "slides, labelled by the IDC share of the patches under them (default 1.0; 0 = patches only)")
    p.add_argument("--teacher", type=_teacher, default=DEFAULT_TEACHER, metavar="MODEL.tflite[,MODEL2...]|none",
                   help="distil from this model (or the mean of several, comma-separated): its P(IDC) on the "
                        "clean window is mixed into the target (default: the first-generation s2_deep in "
                        "train/teachers/; 'none' = labels only)")
    p.add_argument("--teacher-weight", type=float, default=0.5, metavar="W",
                   help="target = (1 - W) x label + W x teacher's P(IDC) (default 0.5)")
    p.add_argument("--teacher-views", type=int, default=1, choices=(1, 2, 4, 8), metavar="N",
                   help="average the teacher over N of the window's flips and quarter turns: 1, 2, 4 or 8 (default 1)")
    p.add_argument("--no-tflite", action="store_true", help="skip the TFLite export")
    p.add_argument("--no-latency", action="store_true", help="skip the LiteRT latency measurement")
    p.add_argument("--progress", choices=("auto", "bar", "none"), default="auto",
                   help="Keras progress bar per epoch (auto: when the output is a terminal)")
    return p


def config_from_args(args: argparse.Namespace, argv: list[str]) -> TrainConfig:
    """The parsed command line ``argv`` as a run's configuration (ranges are checked by the run)."""
    return TrainConfig(
        data=args.data, out=args.out, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, weight_decay=args.weight_decay, ema=args.ema, seed=args.seed,
        augment=args.augment, class_balance=args.class_balance, select=args.select, cache=args.cache,
        strategy=args.strategy, logical_cpus=args.logical_cpus, val_patients=args.val_patients, val_fraction=args.val_fraction,
        max_patches=args.max_patches, windows_per_patch=args.windows_per_patch,
        teacher=args.teacher, teacher_weight=args.teacher_weight, teacher_views=args.teacher_views,
        stain_scale=args.stain_scale, export_tflite=not args.no_tflite, latency=not args.no_latency,
        verbose=args.progress, command="python -m train " + shlex.join(argv),
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser().parse_args(argv)  # a bad option raises UsageError: one line, exit code 2
    except IdcEdgeError as e:
        print(f"python -m train: error: {e}", file=sys.stderr)
        return 2
    cfg = config_from_args(args, argv)
    try:
        result = run(cfg)
    except IdcEdgeError as e:
        print(f"python -m train: error: {e}", file=sys.stderr)
        return 2
    card = result.card
    m = card.get("int8", card["float"])["metrics"]
    print(f"wrote {result.out}: epoch {card['chosen_epoch']}, validation balanced accuracy "
          f"{m['balanced_accuracy']:.4f}, recall {m['recall_0']:.4f}/{m['recall_1']:.4f}, "
          f"AUC {m['roc_auc']:.4f} at threshold {m['threshold']:.3f} "
          f"({'int8' if 'int8' in card else 'float'}); training {card['training_seconds'] / 60:.1f} min")
    skipped = card["skipped_unreadable"]["count"]
    if skipped:
        print(f"skipped {skipped} unreadable file(s); listed in {result.out / 'model_card.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
