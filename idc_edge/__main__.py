"""The ``idc-edge`` program (``python -m idc_edge`` and the installed ``idc-edge`` command).

A stop while the program is still loading (numpy, OpenCV, LiteRT take about a second, more on a
Raspberry Pi) ends it like one later: Ctrl-C, SIGTERM and SIGHUP (and SIGQUIT for ``run``) are
taken before anything heavy is imported, then one line (:func:`idc_edge.stops.stopped_line`) and
exit 130. Before, a SIGTERM there ended the process by the signal, silently (exit 143).
"""
import sys

from .stops import (EXIT_INTERRUPTED, RUN_ONLY, TERMINATION, command_of, held, ignore_stop_signals,
                    stopped_line, take_stop_signals)


def entry() -> None:
    """Take the stop signals, load the command line and run it (:func:`idc_edge.cli.entry`)."""
    command = command_of(sys.argv[1:])
    take_stop_signals(TERMINATION + (RUN_ONLY if command == "run" else ()))
    try:
        with held():  # numpy loads here: a stop inside its C start-up became an ImportError
            from .cli import entry as cli_entry
    except KeyboardInterrupt as stop:
        ignore_stop_signals()
        try:
            print(stopped_line(command, stop), file=sys.stderr)
        except (OSError, ValueError, AttributeError):  # standard error closed: the exit code still tells
            pass
        sys.exit(EXIT_INTERRUPTED)
    cli_entry()


if __name__ == "__main__":
    entry()
