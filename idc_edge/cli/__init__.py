"""The ``idc-edge`` command line: run, classify, evaluate, info, bench, report.

Every error a user can cause is printed as one line ``idc-edge: error: ...`` naming the
problem and the fix, with exit code 2 and no traceback. Exit codes: 0 done (``run`` also after
Ctrl-C, SIGTERM or SIGHUP: everything recorded is finalised), 2 bad input or a fault that stops
the run (bad model, option or source, disk full), 3 the camera was lost mid-run and did not
come back within ``--camera-timeout`` (results up to then are saved), 130 other commands
interrupted. Warnings (skipped frames or patch files, a camera that drops out) are lines
``idc-edge: warning: ...``.

One module per command (``run.py``, ``classify.py``, ...), each with ``add_parser(sub)`` and its
``cmd_*`` function; shared option helpers are in ``options.py``.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from typing import Optional, Sequence

from .. import __version__
from ..errors import CameraLostError, IdcEdgeError, UsageError
from . import bench, classify, evaluate, info, report, run
from .options import Parser, in_cli_words

EXIT_USAGE = 2
EXIT_CAMERA_LOST = 3
COMMANDS = (run, classify, evaluate, info, bench, report)

__all__ = ["EXIT_CAMERA_LOST", "EXIT_USAGE", "UsageError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="idc-edge", description="Live IDC detection on breast histology, on the device.")
    parser.add_argument("--version", action="version", version=f"idc-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"idc-edge: warning: {message}", file=sys.stderr)


class _WarningLines(logging.Handler):
    """The runtime's log warnings (skipped frames, a camera dropping out) as ``idc-edge: warning:`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"idc-edge: warning: {record.getMessage()}", file=sys.stderr)
        except Exception:
            self.handleError(record)


def _log_warnings_as_lines() -> None:
    logger = logging.getLogger("idc_edge")
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        handler = _WarningLines(logging.WARNING)
        logger.addHandler(handler)
        logger.propagate = False


def _quiet_opencv() -> None:
    """OpenCV's own warnings (e.g. on a missing camera) would add lines to our one-line errors."""
    # FFmpeg's decoder messages ("No JPEG data found in image") bypass OpenCV's log level; our
    # own warnings name the skipped frame instead. Read when the first video is opened.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    try:
        # silent, not ERROR: a corrupt PNG logs "[ERROR:0@0.08] ... IHDR chunk shall be first" before
        # imread returns None, and every failure that matters is checked and said in our own words
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # builds without the logging module
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error or fault, 3 camera lost,
    130 interrupted)."""
    warnings.showwarning = _one_line_warning
    _quiet_opencv()
    _log_warnings_as_lines()
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except CameraLostError as e:
        print(f"idc-edge: error: {e}", file=sys.stderr)
        return EXIT_CAMERA_LOST
    except IdcEdgeError as e:
        print(f"idc-edge: error: {in_cli_words(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("idc-edge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
