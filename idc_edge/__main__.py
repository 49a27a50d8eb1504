"""``python -m idc_edge``: the ``idc-edge`` program. A Ctrl-C while the program is still loading
(numpy, OpenCV, LiteRT take about a second) ends it like one later: "interrupted", exit 130."""
import sys

try:
    from .cli import entry
except KeyboardInterrupt:
    print("idc-edge: interrupted", file=sys.stderr)
    sys.exit(130)

entry()
