"""``python -m train.compare RUN_DIR...``: a Markdown table comparing training runs.

Reads each run's ``model_card.json``; with ``--latency`` re-measures LiteRT latency of every
run's int8 and float32 models one after the other (fairer than numbers taken while other runs
trained). ``--append-to CARD_DIR`` adds the table to that run's model card.

    python -m train.compare runs/arch_* --latency --append-to runs/default
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from idc_edge.errors import IdcEdgeError, OptionError


def _load(run: Path) -> dict[str, Any]:
    path = run / "model_card.json"
    if not path.is_file():
        raise OptionError(f"{str(run)!r} has no model_card.json: pass folders written by python -m train")
    return json.loads(path.read_text())


def _fmt(v, digits=4):
    return "–" if v is None else f"{v:.{digits}f}"


def table(runs: list[Path], latency: bool = False, label: str = "architecture", rounds: int = 5,
          measured: dict[str, dict[str, float]] | None = None) -> str:
    """Markdown table of the runs (float Keras metrics and int8 metrics on validation patients).

    With ``latency``, each model's latency is re-measured (best of ``rounds`` rounds) and, when
    ``measured`` is a dict, stored in it by run folder.
    """
    rows = [
        f"| run | {label} | params | int8 KB | epoch | val AUC (float) | val bal. acc. (float) "
        "| val AUC (int8) | val bal. acc. (int8) | recall 0 / 1 (int8) | threshold (int8) "
        "| ms/patch int8 | ms/patch float32 | train min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        card = _load(run)
        lat = card.get("latency_ms_per_patch") or {}
        if latency and (run / "model_int8.tflite").is_file():
            from .export import latency_ms_per_patch

            lat = {"batch": 64, "threads": 1,
                   "int8": latency_ms_per_patch(run / "model_int8.tflite", rounds=rounds),
                   "float32": latency_ms_per_patch(run / "model_float32.tflite", rounds=rounds)}
            if measured is not None:
                measured[str(run.resolve())] = lat
        f = card["float"]["metrics"]
        q = (card.get("int8") or {}).get("metrics") or {}
        what = card["architecture"] if label == "architecture" else ", ".join(card["config"]["augment"]) or "none"
        rows.append(
            f"| {run.name} | {what} | {card['parameters']:,} | {_fmt((card.get('int8') or {}).get('kb'), 1)} "
            f"| {card['chosen_epoch']}/{card['epochs']} | {_fmt(f['roc_auc'])} | {_fmt(f['balanced_accuracy'])} "
            f"| {_fmt(q.get('roc_auc'))} | {_fmt(q.get('balanced_accuracy'))} "
            f"| {_fmt(q.get('recall_0'), 3)} / {_fmt(q.get('recall_1'), 3)} | {_fmt(q.get('threshold'), 3)} "
            f"| {_fmt(lat.get('int8'))} | {_fmt(lat.get('float32'))} | {card['training_seconds'] / 60:.1f} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m train.compare", description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders written by python -m train")
    ap.add_argument("--latency", action="store_true", help="re-measure LiteRT latency (batch 64, 1 thread)")
    ap.add_argument("--rounds", type=int, default=5,
                    help="latency: best of this many rounds (more on a busy machine; default 5)")
    ap.add_argument("--by", choices=("architecture", "augment"), default="architecture", help="what the runs vary")
    ap.add_argument("--append-to", type=Path, help="run folder whose model card gets this table")
    args = ap.parse_args(argv)
    try:
        measured: dict[str, dict[str, float]] = {}
        md = table(args.runs, args.latency, args.by, args.rounds, measured)
        if args.append_to:
            from .report import write_model_card

            card = _load(args.append_to)
            card["candidates_markdown"] = md
            if str(args.append_to.resolve()) in measured:  # the same measurement as the table's
                card["latency_ms_per_patch"] = measured[str(args.append_to.resolve())]
            write_model_card(card, args.append_to)
    except IdcEdgeError as e:
        print(f"python -m train.compare: error: {e}", file=sys.stderr)
        return 2
    print(md, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
