"""Stop signals of the ``idc-edge`` program from its first line on, and what a stop says.

Only ``signal`` is imported here: the program's launcher (:func:`idc_edge.__main__.entry`) takes
these handlers before numpy, OpenCV or LiteRT load (about a second on a Raspberry Pi), so a
service manager's SIGTERM while the program loads is a stop like any later one, not a death by
the signal (exit 143 without a word).

A stop signal raises ``KeyboardInterrupt`` whose argument is the signal's name (``"SIGTERM"``);
Python's own Ctrl-C raises it without one. :func:`stopped_line` turns either into the one line
the program prints: for ``run`` before its first frame, that the run was stopped before any
frame and by what; for every other stop, ``idc-edge: interrupted``. Both exit with
:data:`EXIT_INTERRUPTED`.

While numpy and OpenCV load (:func:`held`), a stop is held and raised when they have loaded: raised
inside their C initialisation, it was turned into an ``ImportError`` (numpy's "PyCapsule_Import could
not import module datetime", OpenCV's "recursion is detected during loading of cv2", exit 1 with
their own lines) or swallowed by their ``try``/``except`` (the run then went on to the end).
"""
from __future__ import annotations

import contextlib
import signal
from typing import Iterable, Iterator, Optional

#: exit code of a command stopped before it finished (``run``: before its first frame), 128 + SIGINT
EXIT_INTERRUPTED = 130

#: signals that end any command as Ctrl-C does: a service manager stopping it, its terminal closed
TERMINATION = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))

#: ``run`` also takes SIGQUIT (Ctrl-\\) as a stop: by default it ends the process with a core dump
RUN_ONLY = tuple(getattr(signal, n) for n in ("SIGQUIT",) if hasattr(signal, n))


def raise_stop(signum: int, frame) -> None:
    """A signal handler: raise ``KeyboardInterrupt`` naming the signal (``KeyboardInterrupt("SIGTERM")``)."""
    raise KeyboardInterrupt(signal_name(signum))


def signal_name(signum: int) -> str:
    """``"SIGTERM"`` for 15; ``"signal 99"`` for a number without a name."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def stop_cause(stop: BaseException) -> str:
    """What a ``KeyboardInterrupt`` stopped for: the signal it names, else Ctrl-C (Python's SIGINT)."""
    if stop.args and isinstance(stop.args[0], str) and stop.args[0]:
        return stop.args[0]
    return "Ctrl-C"


def take_stop_signals(signals: Iterable[int]) -> dict:
    """Make each of ``signals`` raise :func:`raise_stop`; returns the handlers replaced (none off the
    main thread, where Python takes no handlers: an embedding program keeps its own)."""
    previous = {}
    for s in signals:
        try:
            previous[s] = signal.signal(s, raise_stop)
        except (ValueError, OSError):
            pass
    return previous


def command_of(argv: Iterable[str]) -> Optional[str]:
    """The command word of an ``idc-edge`` command line (its first argument not starting with ``-``)."""
    for arg in argv:
        if not str(arg).startswith("-"):
            return str(arg)
    return None


def stopped_line(command: Optional[str], stop: BaseException, notes: Iterable[str] = ()) -> str:
    """The one line said for ``stop`` (a ``KeyboardInterrupt``) that ended ``command`` unfinished.

    ``run`` stopped before its first frame: ``idc-edge: run stopped by SIGTERM before its first
    frame: nothing was classified`` and ``notes`` (what each output holds, e.g. ``0 result(s) in
    r.jsonl``); any other command: ``idc-edge: interrupted``.
    """
    if command != "run":
        return "idc-edge: interrupted"
    text = f"idc-edge: run stopped by {stop_cause(stop)} before its first frame: nothing was classified"
    notes = [n for n in notes if n]
    return text + (f" ({'; '.join(notes)})" if notes else "")


def ignore_stop_signals(signals: Iterable[int] = TERMINATION + RUN_ONLY + (signal.SIGINT,)) -> None:
    """After a stop: further stop signals are ignored while the program ends (one arriving while Python
    shuts down would end it by the signal, as Python puts its default handlers back then)."""
    for s in signals:
        try:
            signal.signal(s, signal.SIG_IGN)
        except (ValueError, OSError):
            pass


class StoppedEarly(KeyboardInterrupt):
    """A stop that ended ``run`` before its first frame, its outputs closed; ``line`` is what to print
    (:func:`stopped_line`, with what each output holds)."""

    def __init__(self, cause: str, line: str):
        super().__init__(cause)
        self.line = line


#: the signals :func:`held` holds (when a Python handler is set for them)
_HELD = (signal.SIGINT,) + TERMINATION + RUN_ONLY


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Hold stop signals inside the block (a third-party library's import), then honour the first.

    Each of Ctrl-C, SIGTERM, SIGHUP and SIGQUIT that has a Python handler (one that raises) is only
    noted inside the block; when the block ends its handler is put back and, if one arrived,
    ``KeyboardInterrupt`` naming it is raised there. Signals left to the system (SIG_DFL) or ignored
    stay as they are; off the main thread nothing changes.
    """
    arrived: list = []

    def note(signum, frame) -> None:
        arrived.append(signum)

    previous = {}
    for s in _HELD:
        try:
            handler = signal.getsignal(s)
            if callable(handler):
                previous[s] = signal.signal(s, note)
        except (ValueError, OSError):  # not the main thread
            break
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if arrived:
            raise KeyboardInterrupt("Ctrl-C" if arrived[0] == signal.SIGINT else signal_name(arrived[0]))
