"""Quantization benchmark report for models that are already converted (no TensorFlow needed).

    python -m benchmarks.quantization_report                       # the shipped int8 vs float32 pair
    python -m benchmarks.quantization_report --variants runs/convert --out reports/quantization

Evaluates every model through the runtime's PatchClassifier on the validation patients of the
data folder, at each model's sidecar threshold, and writes report.md, report.json and PNG charts
(ROC of all variants, a confusion matrix per variant, size / accuracy / latency). To convert and
report in one go use ``python -m convert ... --report DIR``.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path


from idc_edge.classifier import MODELS_DIR  # noqa: E402
from idc_edge.cli.options import Parser  # noqa: E402
from idc_edge.dataset import default_data_dir  # noqa: E402
from idc_edge.errors import IdcEdgeError, OptionError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = Parser(prog="python -m benchmarks.quantization_report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", metavar="DIR", help="output folder of python -m convert (default: the shipped pair)")
    ap.add_argument("--models", default=str(MODELS_DIR), help="folder of the shipped pair (when --variants is absent)")
    ap.add_argument("--data", default=None, help="data folder (default: $IDC_DATA_DIR or ../shared/idc_patches)")
    ap.add_argument("--out", default="reports/quantization", help="report folder")
    ap.add_argument("--latency-rounds", type=int, default=30, help="latency rounds per model (0: skip)")
    ap.add_argument("--no-charts", action="store_true", help="Markdown and JSON only")
    try:
        args = ap.parse_args(argv)
        from convert.data import load_validation_data
        from convert.existing import evaluate_and_report, folder_variants, shipped_variants

        if args.latency_rounds < 0:
            raise OptionError(f"--latency-rounds must be >= 0, got {args.latency_rounds}")
        if not args.no_charts and importlib.util.find_spec("matplotlib") is None:  # before minutes of scoring
            raise OptionError("the charts need matplotlib, which is not installed (it comes with the train "
                              "extra: pip install '.[train]'); or pass --no-charts for Markdown and JSON only")
        data_dir = Path(args.data) if args.data else default_data_dir()
        if not data_dir.is_dir():
            raise OptionError(f"data folder {str(data_dir)!r} does not exist; pass --data DIR or set IDC_DATA_DIR")
        variants, info = folder_variants(args.variants) if args.variants else shipped_variants(args.models)
        data = load_validation_data(data_dir)
        paths = evaluate_and_report(variants, info, data, args.out, latency_rounds=args.latency_rounds,
                                    charts=not args.no_charts,
                                    command=" ".join(["python -m benchmarks.quantization_report", *sys.argv[1:]]))
    except IdcEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {paths['markdown']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
