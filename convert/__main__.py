"""``python -m convert``: trained Keras model + data folder → int8 (PTQ, QAT) and reference TFLite
models with sidecars, a quantization report, and optionally the shipped default.

Examples::

    python -m convert --model runs/default/model.keras --data ../shared/idc_patches \\
        --out runs/convert --report runs/convert/report
    python -m convert --model runs/default/model.keras --report runs/convert/report --ship
    python -m convert.ship --from runs/convert

Errors a user can cause (missing model or data, bad options) print one line and exit with 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from idc_edge.cli.options import Parser
from idc_edge.dataset import default_data_dir
from idc_edge.errors import IdcEdgeError, ModelError, OptionError


def parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python -m convert", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="runs/default/model.keras", help="trained Keras 3 model (.keras); default runs/default/model.keras")
    ap.add_argument("--data", default=None, help="data folder (default: $IDC_DATA_DIR or ../shared/idc_patches)")
    ap.add_argument("--out", default="runs/convert", help="folder for the variants, their sidecars and variants.json; default runs/convert")
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
    model = Path(args.model)
    if not model.is_file():
        raise ModelError(f"trained model {str(model)!r} does not exist; pass --model PATH to a Keras .keras file "
                         "(python -m train writes runs/<name>/model.keras)")
    data = Path(args.data) if args.data else default_data_dir()
    if not data.is_dir():
        raise OptionError(f"data folder {str(data)!r} does not exist; pass --data DIR or set IDC_DATA_DIR")
    if args.qat_patches is not None and args.qat_patches < 1:
        raise OptionError(f"--qat-patches must be >= 1, got {args.qat_patches}")
    return model, data


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


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)  # a bad option raises UsageError: one line, exit code 2
        model, data_dir = _check_paths(args)
        # Heavy imports only after the cheap checks, so mistakes fail in a fraction of a second.
        from . import qat as qat_mod
        from .data import load_conversion_data
        from .pipeline import RunOptions, run, stderr_log

        names, strength = _qat_augment(args.qat_augment, model)
        qcfg = None if args.no_qat else qat_mod.QatConfig(
            epochs=args.qat_epochs, batch_size=args.qat_batch, learning_rate=args.qat_lr, seed=args.seed,
            augment=names, augment_strength=strength, freeze_batchnorm=args.qat_freeze_bn)
        opts = RunOptions(model_path=model, out_dir=Path(args.out), arch=args.arch, qat=qcfg,
                          input_type=args.input_type, representative_size=args.representative,
                          qat_train_size=args.qat_patches, seed=args.seed, latency_rounds=args.latency_rounds)
        stderr_log(f"reading {data_dir}")
        data = load_conversion_data(data_dir, representative_size=opts.representative_size,
                                    train_size=0 if qcfg is None else opts.qat_train_size, seed=opts.seed)
        stderr_log(f"data: {data.to_dict()}")
        result = run(opts, data)
        if args.report:
            from . import report

            paths = report.write(args.report, result.evaluations, result.selection, result.info, result.labels,
                                 result.probs, with_charts=not args.no_charts)
            stderr_log(f"report: {paths['markdown']}")
        if args.ship:
            from .ship import ship

            a, b = ship(opts.out_dir)
            stderr_log(f"shipped {a} and {b}")
    except IdcEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
