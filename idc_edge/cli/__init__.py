"""The ``idc-edge`` command line: run, classify, evaluate, info, bench, report.

Every error a user can cause is printed as one line ``idc-edge: error: ...`` naming the
problem and the fix, with exit code 2 and no traceback. Exit codes: 0 done (``run`` also after
Ctrl-C, SIGTERM, SIGHUP or SIGQUIT once it has a frame: everything recorded is finalised), 2 bad
input or a fault that stops the run (bad model, option or source, disk full), 3 the camera was lost
mid-run and did not come back within ``--camera-timeout`` (results up to then are saved), 130
``run`` stopped before its first frame and other commands interrupted (see :mod:`idc_edge.stops`),
141 (as if killed by SIGPIPE, without a message) when the reader of standard output went away
(``| head -1``). A closed standard output (``>&-``) is an error line and exit 2; a
closed standard error silences the messages, the exit code still tells. Warnings (skipped frames or patch files, a camera that drops out) are lines
``idc-edge: warning: ...``.

One module per command (``run.py``, ``classify.py``, ...), each with ``add_parser(sub)`` and its
``cmd_*`` function; shared option helpers are in ``options.py``.
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import threading
import warnings
from typing import Optional, Sequence

from .. import __version__
from ..errors import CameraLostError, IdcEdgeError, UsageError
from ..fileio import gone_working_folder, name, short, why, working_folder_gone
from ..redact import redact_url
from . import bench, calibrate, cameras, classify, evaluate, info, report, run
from ..stops import (EXIT_INTERRUPTED, RUN_ONLY, TERMINATION, command_of, held, ignore_stop_signals, raise_stop,
                     stopped_line, take_stop_signals)
from .options import Parser, in_cli_words, learn_flags
from .encoding import HANDLER, encode_errors_with

EXIT_USAGE = 2
EXIT_CAMERA_LOST = 3
EXIT_BROKEN_PIPE = 128 + 13  # as if killed by SIGPIPE, like other Unix tools in a pipeline
MAX_MESSAGE = 600  # characters of one error line
COMMANDS = (run, classify, evaluate, info, bench, report, cameras, calibrate)

__all__ = ["EXIT_CAMERA_LOST", "EXIT_USAGE", "UsageError", "build_parser", "entry", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="idc-edge", description="Live IDC detection on breast histology, on the device.")
    parser.add_argument("--version", action="version", version=f"idc-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for command in COMMANDS:
        command.add_parser(sub)
    learn_flags(parser)
    return parser


_STDERR_LINES = threading.Lock()


def say(line: str) -> None:
    """Write ``line`` and its newline to standard error in one call, one line at a time.

    The capture, inference and output threads each warn: ``print`` writes a text and its newline
    apart, so two warnings ran into one line ("...`idc-edge calibrate scale`)idc-edge: warning: a
    7×9 px frame ...") followed by an empty one.
    """
    with _STDERR_LINES:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    say(f"idc-edge: warning: {redact_url(in_cli_words(message))}")


class _WarningLines(logging.Handler):
    """The runtime's log warnings (skipped frames, a camera dropping out) as ``idc-edge: warning:`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            say(f"idc-edge: warning: {redact_url(in_cli_words(record.getMessage()))}")
        except Exception:
            self.handleError(record)


def _log_warnings_as_lines() -> None:
    logger = logging.getLogger("idc_edge")
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        handler = _WarningLines(logging.WARNING)
        logger.addHandler(handler)
        logger.propagate = False


def _own_warnings_as_lines() -> None:
    """idc-edge's own warnings (a frame's guessed bit depth, frames without colour) are lines of the program
    whatever Python's warning controls say: ``PYTHONWARNINGS=error`` (a CI runner's or a developer's shell,
    ``python -W error``) turned the first of them into "internal error (UserWarning ...)", mid-run, and
    ``PYTHONWARNINGS=ignore`` (set in many container images to hush libraries) dropped them, so a guess
    that decides the answer went unsaid. Other packages' warnings stay under those controls."""
    warnings.filterwarnings("default", category=UserWarning, module=r"idc_edge(\.|$)")


def _quiet_opencv() -> None:
    """OpenCV's own warnings (e.g. on a missing camera) would add lines to our one-line errors."""
    # FFmpeg's decoder messages ("No JPEG data found in image") bypass OpenCV's log level; our
    # own warnings name the skipped frame instead. Read when the first video is opened.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    with held():  # a stop inside OpenCV's start-up became "recursion is detected during loading of cv2"
        import cv2

    try:
        # silent, not ERROR: a corrupt PNG logs "[ERROR:0@0.08] ... IHDR chunk shall be first" before
        # imread returns None, and every failure that matters is checked and said in our own words
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # builds without the logging module
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")


class _ClosedStream:
    """Stands in for a standard stream whose descriptor was closed (``>&-``): writing fails clearly."""

    def __init__(self, what: str):
        self.what = what

    def write(self, text: str) -> int:  # even "": a command checks before it starts work
        raise OSError(errno.EBADF, f"{self.what} is closed (started with >&- ?); give the command somewhere to "
                                   "write, e.g. > out.txt")

    def flush(self) -> None:
        pass


def _guard_standard_streams() -> None:
    """Put ``/dev/null`` on a closed descriptor 0, 1 or 2 before anything else opens a file, so a
    results file can never become "standard output" (and LiteRT's or OpenCV's own messages
    cannot land in it); Python's ``sys.stdout``/``sys.stderr`` for a closed one is replaced."""
    for fd, attr in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        try:
            null = os.open(os.devnull, os.O_RDWR)
        except OSError:
            continue
        if null != fd:  # a lower descriptor was free after all: keep numbering as it was
            os.dup2(null, fd)
            os.close(null)
        if attr == "stdout":
            sys.stdout = _ClosedStream("standard output")
        elif attr == "stderr":
            sys.stderr = open(fd, "w", closefd=False)  # messages are lost; the exit code still tells


def _error(message: str) -> None:
    """Print one ``idc-edge: error:`` line, cut to a readable length, a camera URL's secrets masked."""
    text = " ".join(redact_url(str(message)).split())
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1] + "…"
    try:
        say(f"idc-edge: error: {text}")
    except (OSError, ValueError):
        pass  # stderr itself is gone: the exit code still tells


def _detach_stdout() -> None:
    """After a closed pipe: point descriptor 1 at /dev/null so the final flush at exit is silent."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.close(null)
    except OSError:
        pass


def _exit_now_if_a_driver_is_stuck(code: int) -> int:
    """A camera open abandoned inside OpenCV/FFmpeg can make the C++ runtime abort (SIGABRT) while
    Python shuts down; with one still running, flush and end the process here with ``code``."""
    from ..sources.camera import abandoned_calls

    if abandoned_calls():
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(code)
    return code


def _terminate_as_interrupt(command: Optional[str]) -> dict:
    """SIGTERM and SIGHUP (and SIGQUIT for ``run``) raise KeyboardInterrupt in every command, as ``run``
    already did: killed by the signal, ``classify --out`` (like ``report --html`` or a profile) left its
    hidden half-written file behind at every stop. Returns the handlers to put back."""
    return take_stop_signals(TERMINATION + (RUN_ONLY if command == "run" else ()))


def _put_back(previous: dict) -> None:
    """Put back the handlers ``main`` replaced, unless a command changed them since: after a stop they
    are left ignored until the process ends (one arriving while Python shuts down would end it by the
    signal, as Python puts its default handlers back then)."""
    for s, handler in previous.items():
        if signal.getsignal(s) is raise_stop:
            signal.signal(s, handler)


class _StandardOutputError(OSError):
    """A write of standard output failed (raised by :class:`_NamedOutput` with the errno it failed with)."""


class _NamedOutput:
    """Standard output while a command runs: writes and flushes go to the stream it wraps, and one that
    fails for a reason other than a closed pipe raises :class:`_StandardOutputError`, so the error line can
    say it was standard output (``> results.json`` on a full disk said only "the disk is full"; past
    ``ulimit -f``, "File too large", naming nothing). Everything else is the wrapped stream's."""

    def __init__(self, stream):
        self._stream = stream

    def _guarded(self, call, *args):
        try:
            return call(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            if isinstance(e, _StandardOutputError) or e.errno is None:
                raise
            raise _StandardOutputError(e.errno, e.strerror) from None

    def write(self, text):
        return self._guarded(self._stream.write, text)

    def writelines(self, lines):
        return self._guarded(self._stream.writelines, lines)

    def flush(self):
        return self._guarded(self._stream.flush)

    def __getattr__(self, attr):
        return getattr(self._stream, attr)


def _standard_output_message(error: OSError) -> str:
    """What a failed write of standard output (``> results.json`` on a full disk, past ``ulimit -f``) says:
    that it was standard output, where it led and that what it holds is cut short (it said only "the disk
    is full", or "File too large", naming nothing)."""
    try:
        target = os.readlink("/proc/self/fd/1")
    except OSError:
        target = None
    where = f" ({name(target)})" if target and target.startswith("/") else ""
    if error.errno == errno.EFBIG:
        return (f"cannot write standard output{where}: the file reached this process's file-size limit (ulimit -f); "
                "what it holds is cut short: raise the limit (ulimit -f unlimited) and run the command again")
    return (f"cannot write standard output{where}: {why(error)}; what it holds is cut short: free space, or redirect "
            "it to a file on another disk, and run the command again")


def _prints_results(args) -> bool:
    """Whether the command's results go to standard output (all but ``run`` and ``classify --out``)."""
    return args.command != "run" and not (args.command == "classify" and args.out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error or fault, 3 camera lost,
    130 interrupted: Ctrl-C, SIGTERM or SIGHUP, ``run`` before its first frame, 141 the reader of
    standard output went away)."""
    _guard_standard_streams()
    # file names that are not UTF-8 print as their bytes; µm, ≥, … in a terminal that is not UTF-8 as um, >=, ...
    encode_errors_with(HANDLER, sys.stdout, sys.stderr)
    argv = list(sys.argv[1:] if argv is None else argv)
    previous = _terminate_as_interrupt(command_of(argv))
    logger = logging.getLogger("idc_edge")
    # what _main changes process-wide is put back, for a program (or a test) that calls main() and goes on
    shown, filters, propagate, handlers = warnings.showwarning, warnings.filters[:], logger.propagate, logger.handlers[:]
    try:
        return _main(argv)
    finally:
        _put_back(previous)
        warnings.showwarning, warnings.filters[:] = shown, filters
        logger.propagate, logger.handlers[:] = propagate, handlers


def _main(argv: Optional[Sequence[str]]) -> int:
    finished, code = False, 0
    try:
        warnings.showwarning = _one_line_warning
        _own_warnings_as_lines()
        _quiet_opencv()  # loads OpenCV: a Ctrl-C here is "interrupted" like any later one
        _log_warnings_as_lines()
        args = build_parser().parse_args(argv)
        if isinstance(sys.stdout, _ClosedStream) and _prints_results(args):
            sys.stdout.write("")  # refused now, before a profile or report is written and then called a failure
        wrapped, sys.stdout = sys.stdout, _NamedOutput(sys.stdout)
        try:
            code = args.func(args)
            # a stop from here on changes nothing: run's outputs are final (it prints no results), the
            # others' once standard output is flushed
            finished = args.command == "run"
            sys.stdout.flush()
        finally:
            sys.stdout = wrapped
        finished = True
        return code
    except CameraLostError as e:
        _error(in_cli_words(e))
        return EXIT_CAMERA_LOST
    except IdcEdgeError as e:
        _error(in_cli_words(e))
        return EXIT_USAGE
    except KeyboardInterrupt as stop:  # `run` stopped before its first frame says so (after it, run returns 0)
        ignore_stop_signals()
        if finished:
            return code
        try:
            say(getattr(stop, "line", None) or stopped_line(command_of(argv or ()), stop))
        except (OSError, ValueError):
            pass
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `idc-edge ... | head -1`: the reader has all it wanted
        _detach_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as e:  # a file error not already put in words where it happened
        if isinstance(e, _StandardOutputError):
            _error(_standard_output_message(e))
        elif e.filename is None and working_folder_gone():  # a relative path not checked by as_path
            _error(gone_working_folder("a path given"))
        else:
            _error(f"{why(e)}" + (f": {name(e.filename)}" if e.filename is not None else ""))
        return EXIT_USAGE
    except MemoryError:
        _error("out of memory; use smaller frames or images, a larger --stride, or a lower IDC_EDGE_MEMORY_MB budget")
        return EXIT_USAGE
    except Exception as e:  # a bug: still one line, never a traceback (IDC_EDGE_DEBUG=1 shows it)
        if os.environ.get("IDC_EDGE_DEBUG"):
            raise
        _error(f"internal error ({type(e).__name__}: {short(str(e), 200)}); please report it with the command "
               "line (IDC_EDGE_DEBUG=1 shows the traceback)")
        return EXIT_USAGE


def entry() -> None:
    """The ``idc-edge`` program: :func:`main`, then exit with its code (at once, when a camera open
    is still stuck in a driver)."""
    sys.exit(_exit_now_if_a_driver_is_stuck(main()))


if __name__ == "__main__":
    entry()
