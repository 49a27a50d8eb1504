"""``idc-edge report``: a readable summary of a results file, as text, JSON or one HTML page."""
from __future__ import annotations

import os
import sys

from ..errors import RecordError
from ..jsonready import dumps
from .options import NO_STDOUT, path


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="summarise a results file (--record): fields, IDC over time, frames with most "
                                      "IDC, settings and model",
                       description="Summarise each session of a results file written by `idc-edge run --record`.")
    p.add_argument("results", type=path("RESULTS.jsonl"), metavar="RESULTS.jsonl", help="a results file written by idc-edge run --record")
    p.add_argument("--html", type=path("--html", NO_STDOUT), metavar="OUT.html", help="write one self-contained HTML page (plot and pictures inline)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from ..fileio import check_distinct, write_whole
    from ..report import render_html, render_text, summarize

    check_distinct([("the results file", args.results)], [("--html", args.html)])
    summaries = summarize(args.results, pictures=bool(args.html))
    if args.html:  # whole or not at all: a full disk or a crash keeps the earlier report
        page = render_html(summaries, os.path.basename(str(args.results)))
        write_whole(args.html, page.encode("utf-8", "surrogateescape"), "--html", error=RecordError, replaces="html")
    if args.json:
        print(dumps({"results": str(args.results), "sessions": [s.to_dict() for s in summaries]}))
    else:
        print(render_text(summaries))
        if args.html:
            print(f"report in {args.html}", file=sys.stderr)
    return 0
