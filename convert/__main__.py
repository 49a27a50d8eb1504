"""``python -m convert``: trained Keras model + data folder → int8 (PTQ, QAT) and reference TFLite
models with sidecars, a quantization report, and optionally the shipped default.

Examples::

    python -m convert --model runs/default/model.keras --data ../shared/idc_patches \\
        --out runs/convert --report runs/convert/report
    python -m convert --model runs/default/model.keras --report runs/convert/report --ship
    python -m convert.ship --from runs/convert

The validation patients (thresholds, metrics) are the training run's, read from the
``model_card.json`` / ``train_config.json`` beside ``--model``; a model without them needs
``--val-patients``. Everything is written into a fresh folder beside ``--out`` and moved into place
only when complete, so a failed or interrupted run leaves the previous ``--out`` untouched.

Errors a user can cause (missing or wrong model, missing data, bad options) print one line and exit
with 2, before any data is read.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from idc_edge.cli.options import Parser
from idc_edge.dataset import default_data_dir
from idc_edge.errors import IdcEdgeError, OptionError
from idc_edge.stops import TERMINATION, stop_cause, take_stop_signals


def parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python -m convert", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="runs/default/model.keras", help="trained Keras 3 model (.keras); default runs/default/model.keras")
    ap.add_argument("--data", default=None, help="data folder (default: $IDC_DATA_DIR or ../shared/idc_patches)")
    ap.add_argument("--out", default="runs/convert", help="folder for the variants, their sidecars and variants.json; default runs/convert")
    ap.add_argument("--val-patients", metavar="P1,P2",
                    help="validation patients (comma-separated), only for a model whose training run recorded none; "
                         "default: the ones in model_card.json / train_config.json beside --model")
    ap.add_argument("--report", metavar="DIR", help="write the quantization report (Markdown, JSON, PNG) here")
    ap.add_argument("--ship", action="store_true",
                    help="copy the chosen int8 model and its float32 twin to idc_edge/models")
    ap.add_argument("--arch", help="architecture name in train/architectures.py (default: from train_config.json "
                                   "or the model's name); needed for QAT")
    ap.add_argument("--no-qat", action="store_true", help="skip quantization-aware training")
    ap.add_argument("--qat-epochs", type=int, default=2, help="QAT fine-tuning epochs (default 2)")
    ap.add_argument("--qat-lr", type=float, default=1e-4, help="QAT Adam learning rate (default 1e-4)")
    ap.add_argument("--qat-batch", type=int, default=64, help="QAT batch size (default 64)")
    ap.add_argument("--qat-freeze-bn", action="store_true",
                    help="keep batch normalization as trained (inference mode) during QAT fine-tuning")
    ap.add_argument("--qat-augment", default="training",
                    help="QAT augmentations: 'training' (the training run's, from train_config.json; flip,rot90 "
                         "when absent), 'none', or a comma-separated list of train/augment.py names")
    ap.add_argument("--qat-patches", type=int, default=None,
                    help="training-patient patches for QAT (default: all of them)")
    ap.add_argument("--representative", type=int, default=300,
                    help="training-patient patches calibrating PTQ (default 300)")
    ap.add_argument("--input-type", choices=("uint8", "int8"), default="uint8", help="int8 models' input/output type (default uint8: raw bytes)")
    ap.add_argument("--seed", type=int, default=0, help="seed of sampling and fine-tuning (default 0)")
    ap.add_argument("--latency-rounds", type=int, default=30, help="latency rounds per variant, 0 to skip (default 30)")
    ap.add_argument("--no-charts", action="store_true", help="report without PNG charts")
    return ap


def _check_paths(args) -> tuple[Path, Path]:
    from .kerasenv import check_keras_file
    from .staging import check_destination

    model = check_keras_file(args.model)
    data = Path(args.data) if args.data else default_data_dir()
    if not data.is_dir():
        raise OptionError(f"data folder {str(data)!r} does not exist; pass --data DIR or set IDC_DATA_DIR")
    if args.qat_patches is not None and args.qat_patches < 1:
        raise OptionError(f"--qat-patches must be >= 1, got {args.qat_patches}")
    if args.seed < 0:
        raise OptionError(f"--seed must be >= 0, got {args.seed}")
    check_destination(args.out, "--out")
    if args.report:
        check_destination(args.report, "--report")
    return model, data


def _val_patients(spec: str | None, model: Path) -> tuple[tuple[str, ...], str]:
    """The validation patients and where they come from: the training run's record, else ``--val-patients``.

    Raises:
        OptionError: no record and no ``--val-patients``, or ``--val-patients`` contradicts the record.
    """
    from .data import recorded_validation_patients

    given = None if spec is None else tuple(dict.fromkeys(p.strip() for p in spec.split(",") if p.strip()))
    if given == ():
        raise OptionError("--val-patients: expected comma-separated patient names, e.g. 8867,8914")
    recorded, source = recorded_validation_patients(model)
    if recorded is None and given is None:
        raise OptionError(f"cannot tell which patients the model was validated on ({source}); pass --val-patients "
                          "P1,P2 with the training run's validation patients")
    if recorded is not None and given is not None and set(given) != set(recorded):
        raise OptionError(f"--val-patients {','.join(given)} differs from the validation patients of {source} "
                          f"({','.join(recorded)}); leave it out")
    return (recorded, source) if recorded is not None else (given, "--val-patients")


def _qat_augment(spec: str, model: Path) -> tuple[tuple[str, ...], dict]:
    """``--qat-augment`` → (augmentation names, their strengths); ``training`` reads both from the
    training run's train_config.json (so a run with a wider ``--stain-scale`` is fine-tuned with it);
    otherwise the strengths are the defaults."""
    spec = spec.strip()
    if spec == "training":
        from .pipeline import read_train_config

        cfg = read_train_config(model)
        strength = cfg.get("augment_strength")
        return (tuple((cfg.get("config") or {}).get("augment") or ("flip", "rot90")),
                dict(strength) if isinstance(strength, dict) else {})
    if spec == "none":
        return (), {}
    return tuple(s.strip() for s in spec.split(",") if s.strip()), {}


def _report_folder(report: str | None, out: Path, staged_out: Path, stack) -> Path | None:
    """Where the report is written: inside the staged ``--out`` when it lies in ``--out``, else its own staging."""
    from .staging import inside, staged

    if not report:
        return None
    rel = inside(Path(report), out)
    return staged_out / rel if rel is not None else stack.enter_context(staged(Path(report)))


def _convert(args, model_path: Path, data_dir: Path) -> Path:
    """Load and check the model, read the data, convert into a staged folder; returns ``--out``."""
    from contextlib import ExitStack

    from . import qat as qat_mod
    from .data import load_conversion_data
    from .kerasenv import load_keras_model
    from .pipeline import RunOptions, run, stderr_log
    from .staging import staged

    val_patients, source = _val_patients(args.val_patients, model_path)
    names, strength = _qat_augment(args.qat_augment, model_path)
    qcfg = None if args.no_qat else qat_mod.QatConfig(
        epochs=args.qat_epochs, batch_size=args.qat_batch, learning_rate=args.qat_lr, seed=args.seed,
        augment=names, augment_strength=strength, freeze_batchnorm=args.qat_freeze_bn)
    out = Path(args.out)
    opts = RunOptions(model_path=model_path, out_dir=out, arch=args.arch, qat=qcfg,
                      input_type=args.input_type, representative_size=args.representative,
                      qat_train_size=args.qat_patches, seed=args.seed, latency_rounds=args.latency_rounds)
    model = load_keras_model(model_path)  # before the data: a wrong model fails in seconds
    stderr_log(f"reading {data_dir}; validation patients {', '.join(val_patients)} from {source}")
    data = load_conversion_data(data_dir, val_patients, source=source, representative_size=opts.representative_size,
                                train_size=0 if qcfg is None else opts.qat_train_size, seed=opts.seed)
    if data.unreadable:
        stderr_log(f"warning: {len(data.unreadable)} unreadable patch(es) left out, e.g. "
                   f"{', '.join(data.unreadable[:3])}")
    stderr_log(f"data: {data.to_dict()}")
    with ExitStack() as stack:
        staged_out = stack.enter_context(staged(out))
        report_dir = _report_folder(args.report, out, staged_out, stack)
        result = run(replace(opts, out_dir=staged_out), data, model=model)
        if report_dir is not None:
            from . import report

            report.write(report_dir, result.evaluations, result.selection, result.info, result.labels,
                         result.probs, with_charts=not args.no_charts)
    stderr_log(f"wrote {out}" + (f"; report {Path(args.report) / 'report.md'}" if args.report else ""))
    return out


def main(argv: list[str] | None = None) -> int:
    """Convert as the command line says; 0 done, 2 bad input, 130 stopped (Ctrl-C, SIGTERM, SIGHUP):
    SIGTERM and SIGHUP stop it as Ctrl-C does (they ended it by the signal, without a word)."""
    take_stop_signals(TERMINATION)
    try:
        args = parser().parse_args(argv)  # a bad option raises UsageError: one line, exit code 2
        model, data_dir = _check_paths(args)
        out = _convert(args, model, data_dir)
        if args.ship:
            from .pipeline import stderr_log
            from .ship import ship

            a, b = ship(out)
            stderr_log(f"shipped {a} and {b}")
    except IdcEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(f"error: interrupted by {stop_cause(stop)}; the previous --out was left as it was", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
