"""``python -m train``: train an IDC patch classifier on the data set's own layout.

Errors a user can cause (bad folder, bad option, a split without a class) are printed on one
line and the exit code is 2.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys

from idc_edge.cli.options import Parser, number, positive_int, whole_number
from idc_edge.dataset import default_data_dir
from idc_edge.errors import IdcEdgeError, OptionError
from idc_edge.fileio import read_bytes
from idc_edge.stops import TERMINATION, stop_cause, take_stop_signals

from . import architectures
from .cache import cache_path_problem
from .config import AUGMENTATIONS, COMBINED_DRAWS, DEFAULT_AUGMENT, DEFAULT_TEACHER, PRESETS, AugmentStrength, parse_augment
from .run import CLASS_BALANCE, SELECT_METRICS, STRATEGIES, TrainConfig, run


def _augment(text: str) -> tuple[str, ...]:
    try:
        return parse_augment(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--augment: ")) from None


def _patients(text: str) -> tuple[str, ...]:
    """``--val-patients``: ids separated by commas or spaces; a file of them only when written as
    ``@FILE`` or as a path with a '/' (an id is never read as a file that happens to share its name)."""
    if text.startswith("@") or "/" in text:
        name = text.removeprefix("@")
        # opened without blocking, a regular file only, within the memory budget: a FIFO nobody
        # writes waited for ever and /dev/zero was read until memory ran out (Path.read_text)
        try:
            data = read_bytes(name, "the patient list file", OptionError)
        except IdcEdgeError as e:
            raise argparse.ArgumentTypeError(f"{e}; give a text file of patient ids") from None
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            raise argparse.ArgumentTypeError(f"the patient list file {name!r} is not UTF-8 text; give a text file "
                                             "of patient ids") from None
    else:
        raw = text
    ids = tuple(p for p in raw.replace(",", " ").split() if p)
    if not ids:
        raise argparse.ArgumentTypeError("expected patient ids separated by commas or spaces, or @FILE of them")
    return ids


def _bounded(flag: str, low: float, high: float, low_open: bool = False):
    """argparse type: a finite number in [low, high] (or (low, high] with ``low_open``)."""
    def parse(text: str) -> float:
        value = number(flag)(text)
        if not (math.isfinite(value) and (low < value if low_open else low <= value) and value <= high):
            raise argparse.ArgumentTypeError(f"{flag} must be a number in {'(' if low_open else '['}{low:g}, {high:g}], "
                                             f"got {text}")
        return value
    return parse


def _seed(text: str) -> int:
    value = whole_number("--seed")(text)
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError(f"--seed must be between 0 and 2**32 - 1, got {text}")
    return value


def _cache(text: str) -> str:
    problem = cache_path_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _teacher(text: str) -> str | None:
    return None if text.strip().lower() in ("none", "") else text


def parser() -> argparse.ArgumentParser:
    p = Parser(prog="python -m train", description=(
        "Train the IDC patch classifier on <data>/<patient>/<0|1>/*.png, split by patient; choose the "
        "epoch and the decision threshold on the validation patients; write model.keras, an int8 "
        "model_int8.tflite with its sidecar, curves and a model card to --out."))
    p.add_argument("--data", default=str(default_data_dir()),
                   help="data folder in the data set's layout (default: $IDC_DATA_DIR or ../shared/idc_patches)")
    p.add_argument("--out", required=True, help="output folder, e.g. runs/default: written in a temporary folder next "
                   "to it and moved into place when the run is complete; one that holds files is refused")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an --out that already holds a run (only once the new run is complete)")
    p.add_argument("--arch", default=architectures.DEFAULT_ARCH, choices=architectures.names(),
                   help=f"architecture (default {architectures.DEFAULT_ARCH})")
    p.add_argument("--epochs", type=positive_int("--epochs"), default=20, help="training epochs, 1 to 10000 (default 20)")
    p.add_argument("--batch-size", type=positive_int("--batch-size"), default=128, help="global batch size, 1 to 65536 patches (default 128)")
    p.add_argument("--learning-rate", type=_bounded("--learning-rate", 0, 1, low_open=True), default=2e-3, help="peak AdamW learning rate (default 2e-3)")
    p.add_argument("--weight-decay", type=_bounded("--weight-decay", 0, 1), default=1e-4, help="AdamW weight decay (default 1e-4)")
    p.add_argument("--ema", type=float, default=0.995, metavar="MOMENTUM",
                   help="validate and keep an exponential moving average of the weights (default 0.995; "
                        "0 = off, e.g. for runs of a few dozen steps)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the split, shuffling, augmentation and weights")
    p.add_argument("--augment", type=_augment, default=DEFAULT_AUGMENT, metavar="LIST",
                   help=f"comma-separated subset of {','.join(AUGMENTATIONS)}, or a preset: "
                        + ", ".join(f"{k} ({','.join(v) or '-'})" for k, v in PRESETS.items())
                        + "; or a preset minus names, e.g. all-jpeg (the default)")
    p.add_argument("--stain-scale", type=number("--stain-scale"), default=AugmentStrength.stain_scale, metavar="S",
                   help=f"stain jitter: each H&E stain's optical density x U(1 - S, 1 + S), 0 <= S < 1 "
                        f"(default {AugmentStrength.stain_scale})")
    p.add_argument("--haematoxylin-scale", type=number("--haematoxylin-scale"), default=None, metavar="S",
                   help="haematoxylin's own jitter, x U(1 - S, 1 + S), 0 <= S < 1: a weak or heavy haematoxylin "
                        "alone (default: --stain-scale)")
    combined = {  # drawn with the camera families (train/camera_augment.py); help: what P is the probability of
        "--grain-with-cast": "low-light grain (150-600 e- at white) on an image that drew a colour cast and no grain "
                             "(EXPERIMENTS.md section 9: 0.35)",
        "--hue-with-cast": "a camera hue setting of +-(15-30) degrees on an image that drew a colour cast "
                           "(EXPERIMENTS.md section 11)",
        "--dim-with-grain": "under-exposure (gain x0.45-0.8) on an image that got grain from --grain-with-cast and "
                            "drew no exposure (EXPERIMENTS.md section 11)",
        "--weak-haematoxylin": "a weak haematoxylin (x0.55-0.8) drawn together with a red channel out of focus, a "
                               "hue setting or a saturation setting (EXPERIMENTS.md section 11)",
        "--glare": "veiling glare (stray light, 5-40 %% of the glass's light added to every pixel in linear light, "
                   "in the lamp's colour; EXPERIMENTS.md section 10)",
    }
    for flag, what in combined.items():
        p.add_argument(flag, type=number(flag), default=0.0, metavar="P",
                       help=f"probability of {what}, 0 <= P <= 1 (default 0)")
    p.add_argument("--class-balance", choices=CLASS_BALANCE, default="weights",
                   help="'weights': weight each class by N / (2 N_class) in the loss (default)")
    p.add_argument("--select", choices=SELECT_METRICS, default="auc",
                   help="validation metric that chooses the epoch (default auc)")
    p.add_argument("--cache", type=_cache, default=None, metavar="memory|PATH",
                   help="cache decoded patches in memory, or in tf.data cache files PATH.<key>* on disk, <key> a hash "
                        "of the split's files (path, size, time), windows and seed: a changed split makes a new cache, "
                        "an unchanged one is reused; not inside the repository except under runs/; "
                        "default: stream from disk every epoch")
    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="'mirrored': all local GPUs (tf.distribute.MirroredStrategy); 'multiworker': several "
                        "machines, each started with its TF_CONFIG (MultiWorkerMirroredStrategy); --batch-size is global")
    p.add_argument("--logical-cpus", type=positive_int("--logical-cpus"), default=None, metavar="N",
                   help="split the CPU into N logical devices, 1 to 256 (to try --strategy mirrored without GPUs, as CI does)")
    p.add_argument("--val-patients", type=_patients, default=None, metavar="IDS|@FILE",
                   help="validation patients, separated by commas or spaces, or read from @FILE (or a path with a '/'); "
                        "an id the data does not hold is refused (default: the literature's validation patients present, "
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
        data=args.data, out=args.out, overwrite=args.overwrite, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, weight_decay=args.weight_decay, ema=args.ema, seed=args.seed,
        augment=args.augment, class_balance=args.class_balance, select=args.select, cache=args.cache,
        strategy=args.strategy, logical_cpus=args.logical_cpus, val_patients=args.val_patients, val_fraction=args.val_fraction,
        max_patches=args.max_patches, windows_per_patch=args.windows_per_patch,
        teacher=args.teacher, teacher_weight=args.teacher_weight, teacher_views=args.teacher_views,
        stain_scale=args.stain_scale, haematoxylin_scale=args.haematoxylin_scale,
        **{name: getattr(args, name) for name in COMBINED_DRAWS},
        export_tflite=not args.no_tflite, latency=not args.no_latency,
        verbose=args.progress, command="python -m train " + shlex.join(argv),
    )


def main(argv: list[str] | None = None) -> int:
    """Train as the command line says; 0 done, 2 bad input, 130 stopped (Ctrl-C, SIGTERM, SIGHUP).

    SIGTERM and SIGHUP stop it as Ctrl-C does: a service manager or a closed terminal ended it by
    the signal, without a word, and left the unfinished run's ``.OUT.partial-*`` folder behind.
    """
    take_stop_signals(TERMINATION)
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
    except KeyboardInterrupt as stop:
        print(f"python -m train: interrupted by {stop_cause(stop)}; nothing of this run is kept, "
              f"{cfg.out!r} left as it was", file=sys.stderr)
        return 130
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
