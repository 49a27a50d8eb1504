"""``idc-edge bench``: measure speed on this device."""
from __future__ import annotations

import sys

from .options import path, whole_number


def add_parser(sub) -> None:
    bench = sub.add_parser("bench", help="measure speed on this device: patch and frame latency, reuse, start-up",
                           description="Time the model and the whole pipeline on this device with frames made "
                                       "here (no data needed) and print tables; ratios are measured interleaved.")
    bench.add_argument("--model", type=path("--model"), metavar="PATH",
                       help="int8 model to time, with its float32 twin from the sidecar (default: the shipped one)")
    bench.add_argument("--quick", action="store_true", help="fewer frame sizes and rounds (about half the time)")
    bench.add_argument("--threads", type=whole_number("--threads"), metavar="N",
                       help="the 'all threads' setting of the patch latency (default: the CPU count)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    from ..bench import device_bench, format_tables
    from ..jsonready import dumps

    def progress(stage: str) -> None:
        print(f"idc-edge bench: measuring {stage} ...", file=sys.stderr, flush=True)

    result = device_bench(args.model, quick=args.quick, threads=args.threads, progress=None if args.json else progress)
    print(dumps(result) if args.json else format_tables(result))
    return 0
