"""``idc-edge report``: a readable summary of a results file, as text, JSON or one HTML page."""
from __future__ import annotations

import json
import os
import sys

from ..errors import RecordError


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="summarise a results file (--record): fields, IDC over time, frames with most "
                                      "IDC, settings and model",
                       description="Summarise each session of a results file written by `idc-edge run --record`.")
    p.add_argument("results", metavar="RESULTS.jsonl", help="a results file written by idc-edge run --record")
    p.add_argument("--html", metavar="OUT.html", help="write one self-contained HTML page (plot and pictures inline)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from ..report import render_html, render_text, summarize

    summaries = summarize(args.results, pictures=bool(args.html))
    if args.html:
        page = render_html(summaries, os.path.basename(str(args.results)))
        try:
            with open(args.html, "w", encoding="utf-8") as f:
                f.write(page)
        except OSError as e:
            raise RecordError(f"cannot write the report to {args.html!r}: {e.strerror}") from None
    if args.json:
        print(json.dumps({"results": str(args.results), "sessions": [s.to_json() for s in summaries]}))
    else:
        print(render_text(summaries))
        if args.html:
            print(f"report in {args.html}", file=sys.stderr)
    return 0
