"""Shared pieces of the command line: the parser (one-line usage errors with did-you-mean hints,
no abbreviated options), argparse type converters and the model options every command takes."""
from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import sys
from typing import Optional

from ..errors import ModelError, UsageError
from ..fileio import short


class Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` with a did-you-mean hint instead of exiting, and
    takes no abbreviated options (``--strid`` is an error, not ``--stride``).

    A mistyped option is named first even when argparse would complain about something else
    (``run --sourc x`` is "unknown option --sourc (did you mean --source?)", not "one of
    --camera --source is required"), and hints come from the subcommand's own options only.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._seen: list[str] = []

    def parse_known_args(self, args=None, namespace=None):
        self._seen = [str(a) for a in (sys.argv[1:] if args is None else args)]
        return super().parse_known_args(args, namespace)

    def _get_value(self, action, arg_string):
        """Every value an argument takes is refused when empty or blank (an unset shell variable,
        ``--serve "$PORT"``), whatever its converter: an empty value never silently means a default."""
        if isinstance(arg_string, str) and not arg_string.strip() and action.nargs != argparse.PARSER:
            what = "/".join(action.option_strings) or action.metavar or action.dest
            raise argparse.ArgumentError(action, f"{what} is empty (an unset shell variable?): give a value")
        return super()._get_value(action, arg_string)

    def _options(self) -> list[str]:
        return [o for a in self._actions for o in a.option_strings]

    def _command(self) -> "Optional[Parser]":
        """The subcommand's parser named in the arguments seen, if any."""
        for action in self._subparsers._group_actions if self._subparsers else ():
            for token in self._seen:
                if not token.startswith("-") and token in getattr(action, "choices", {}):
                    return action.choices[token]
        return None

    def _unknown_option(self, parser: "Parser") -> tuple[Optional[str], str]:
        """(first option-like argument ``parser`` does not know, did-you-mean hint)."""
        known = set(parser._options()) | set(self._options())
        for token in self._seen:
            if token == "--":
                break
            name = token.split("=", 1)[0]
            if not token.startswith("-") or re.match(r"^-\d", token) or name in known:
                continue
            close = difflib.get_close_matches(name, sorted(parser._options()), n=1, cutoff=0.6)
            return name, f" (did you mean {close[0]}?)" if close else ""
        return None, ""

    def _swallowed(self) -> Optional[tuple[str, str]]:
        """(option, last word) when an option taking any number of values (``evaluate --patients ID ...``)
        ran to the end of the arguments and so took the word after it as one of its values: the
        positional argument typed last (``--patients 8863 8865 DATA_DIR``), told by being a path (a folder
        there, or a name with a slash, which no patient id or other value of such an option holds)."""
        many = {o: a for a in self._actions if a.nargs in ("+", "*") for o in a.option_strings}
        seen = self._seen[:self._seen.index("--")] if "--" in self._seen else self._seen
        for i, token in enumerate(seen):
            rest = seen[i + 1:]
            if token in many and rest and not any(t.startswith("-") for t in rest) \
                    and ("/" in rest[-1] or os.path.isdir(rest[-1])):
                return token, rest[-1]
        return None

    def error(self, message: str):
        target = (self._command() or self) if "unrecognized arguments" in message else self
        unknown, hint = self._unknown_option(target)
        if unknown and not message.startswith("argument "):
            message = f"unknown option {unknown}{hint}"  # the typo is the cause of whatever else broke
        elif message.startswith("the following arguments are required") and self._swallowed():
            # "DATA_DIR is required" when it was typed, last, after --patients: which took it as a patient id
            option, word = self._swallowed()
            message += (f" ({option} takes every word after it, so it took {short(word, 200)} as one of its values: "
                        f"give {message.split(': ', 1)[1].split(',')[0]} before {option})")
        m = re.search(r"invalid choice: '([^']+)'", message)
        if m and self._subparsers:
            names = [n for a in self._subparsers._group_actions for n in getattr(a, "choices", {})]
            close = difflib.get_close_matches(m.group(1), names, n=1, cutoff=0.5)
            if close:
                message += f" (did you mean {close[0]}?)"
        raise UsageError(f"{message}; see `{target.prog} --help`")


def whole_number(flag: str):
    """argparse type: text → int (the range is checked by the options the value goes into)."""
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number, got {short(text)}") from None
    return parse


def number(flag: str):
    """argparse type: text → float (the range is checked by the options the value goes into)."""
    def parse(text: str) -> float:
        try:
            return float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {short(text)}") from None
    return parse


def positive_int(name: str):
    def parse(text: str) -> int:
        value = whole_number(name)(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {short(text)}")
        return value
    return parse


def camera(text: str):
    """``--camera``: any form :func:`~idc_edge.sources.camera_forms.parse_camera` takes (checked here,
    so ``--camera slide.avi`` is a one-line usage error pointing to ``--source``)."""
    from ..errors import OptionError
    from ..sources.camera_forms import parse_camera

    try:
        target = parse_camera(text)
    except OptionError as e:
        raise argparse.ArgumentTypeError(in_cli_words(e)) from None
    return target.address if target.kind == "v4l2" else target.text


def frame_size(text: str) -> tuple[int, int]:
    """``--size WxH`` → (width, height) in pixels."""
    from ..errors import OptionError
    from ..sources.modes import parse_size

    try:
        return parse_size(text)
    except OptionError as e:
        raise argparse.ArgumentTypeError(in_cli_words(e)) from None


def fourcc(text: str) -> str:
    """``--fourcc MJPG`` → the four-character code, upper-cased."""
    from ..errors import OptionError
    from ..sources.modes import parse_fourcc

    try:
        return parse_fourcc(text)
    except OptionError as e:
        raise argparse.ArgumentTypeError(in_cli_words(e)) from None


def colour_gains(text: str) -> tuple[float, float]:
    """``--colour-gains R,B`` → (red gain, blue gain) of the camera's own white balance."""
    parts = text.replace(" ", "").split(",")
    try:
        red, blue = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--colour-gains is two numbers RED,BLUE such as 1.8,1.5; got {text!r}") from None
    return red, blue


def add_camera_args(p: argparse.ArgumentParser, source_help: str, source_type=None) -> None:
    """``--camera`` or ``--source`` (one of them, or neither when a profile names the camera), and
    the camera's mode and locks."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--camera", type=camera, metavar="CAMERA",
                     help="camera: index N (/dev/videoN), device path (/dev/v4l/by-id/... survives re-plugging), "
                          "picam[:N] (Raspberry Pi CSI, Picamera2), jetson[:N] (Jetson CSI), a GStreamer pipeline, "
                          "or a stream URL (tcp://, rtsp://, http://)")
    src.add_argument("--source", type=source_type or path("--source"), metavar="PATH", help=source_help)
    p.add_argument("--size", type=frame_size, metavar="WxH", help="camera frame size to ask for, e.g. 1920x1080")
    p.add_argument("--fps", type=number("--fps"), metavar="N", help="camera frame rate to ask for")
    p.add_argument("--fourcc", type=fourcc, metavar="CODE",
                   help="camera pixel format to ask for (MJPG for 1080p at 30 fps on most USB cameras, YUYV, ...)")
    p.add_argument("--lock-exposure", action="store_true",
                   help="turn the camera's automatic exposure off (where the driver allows)")
    p.add_argument("--exposure-us", type=number("--exposure-us"), metavar="US",
                   help="with --lock-exposure: exposure time in microseconds")
    p.add_argument("--lock-white-balance", action="store_true",
                   help="turn the camera's automatic white balance off (where the driver allows)")
    p.add_argument("--colour-gains", type=colour_gains, metavar="R,B",
                   help="picam: the camera's own red and blue gains (Picamera2 ColourGains; turns AWB off)")
    p.add_argument("--profile", type=path("--profile"), metavar="NAME|FILE.toml",
                   help="microscope profile (~/.config/idc-edge/profiles/NAME.toml): camera, mode, um/px, white "
                        "reference; see `idc-edge calibrate`")


#: what ``-`` is told for an input path: no command reads standard input (a pipe or /dev/stdin is refused)
NO_STDIN = ("is not standard input here (no command reads standard input, /dev/stdin neither): save the data to "
            "a file and name that file")
#: ... for an output written as a whole file (``--save-video``, ``--html``)
NO_STDOUT = "is not standard output here (this output is written as a whole file): name a file"


def path(name: str, dash: str = NO_STDIN):
    """A path option: refused when holding a NUL character (empty ones are refused by :class:`Parser`),
    or when it is ``-``, which most tools read as standard input or output: taken as a file name, ``--record -``
    wrote a file named ``-`` in the working folder while the user watched standard output for results.
    ``dash`` says what to do instead (it must be true for this option: ``--record /dev/stdout`` streams,
    but /dev/stdin is refused by every reader)."""
    def parse(text: str) -> str:
        if "\0" in text:
            raise argparse.ArgumentTypeError(f"{name} holds a NUL character, which no file name can")
        if text == "-":
            raise argparse.ArgumentTypeError(f"{name} '-' {dash}, or ./- for a file called -")
        return text
    return parse


def patient_id(name: str):
    """A patient id option, stripped (an empty one is refused by :class:`Parser`, never a silent "all")."""
    def parse(text: str) -> str:
        return text.strip()
    return parse


#: Library option names (``OptionError.option``, ``IdcEdgeError.options``) the command line spells
#: differently and no flag fills directly (sinks, the live view's address). A flag bound to an
#: option field (:mod:`.bindings`) adds its own name (``num_threads`` → ``--threads``, ``dense=False``
#: → ``--no-dense``), and every other option whose argparse ``dest`` is the library's name
#: (``um_per_px`` for ``--um-per-px``) is found in the parser itself (:func:`learn_flags`).
ALIASES = {"lost_timeout_s": "--camera-timeout", "colour_gains_rb": "--colour-gains", "LiveView at": "--serve", "LiveView": "--serve", "port": "--serve",
           "host": "--serve", "WindowSink": "--show", "VideoSink": "--save-video", "JsonlSink": "--record",
           "SnapshotSink": "--snapshots"}
FLAGS = dict(ALIASES)


def learn_flags(parser: argparse.ArgumentParser) -> None:
    """Add every option of ``parser`` and its subcommands to :data:`FLAGS` (``dest`` → flag)."""
    for action in parser._actions:
        if action.option_strings and action.dest not in ("help", "version"):
            FLAGS.setdefault(action.dest, max(action.option_strings, key=len))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                learn_flags(sub)


_VALUE = r"""('[^']*'|"[^"]*"|[^\s,;)]+)"""  # what follows name= : a quoted text or one token


def _as_flag(text: str, entry: str) -> str:
    """``text`` with the option ``entry`` names (see :mod:`idc_edge.errors`) spelled as its flag:
    ``name`` and ``name=VALUE`` → ``--flag`` and ``--flag VALUE`` (quoted for a shell where needed)."""
    def flag_and_value(m: re.Match) -> str:
        value = m.group(1)
        if value is None:
            return flag
        if value[:1] in "'\"" and value[-1:] == value[:1]:
            value = value[1:-1]
        return f"{flag} {shlex.quote(value)}"

    before = r"(?<![\w.-])"
    if entry in FLAGS and not entry.isidentifier():  # an exact text: dense=False, "LiveView at"
        return re.sub(before + re.escape(entry) + r"(?!\w)", FLAGS[entry], text)
    name, value_only = (entry[:-1], True) if entry.endswith("=") else (entry, False)
    flag = FLAGS.get(name)
    if flag is None:
        return text
    return re.sub(before + re.escape(name) + (r"=" + _VALUE if value_only else r"\b(?:=" + _VALUE + ")?"),
                  flag_and_value, text)


#: what the command line says where the API says :data:`idc_edge.frames.BITS_HINT` (no flag sets it)
CLI_BITS_HINT = "convert the images to 8 bits per channel first"


def in_cli_words(error: Exception) -> str:
    """An error's message in the command line's words: the option it is about (``OptionError.option``,
    at the start), the options it names (``IdcEdgeError.options``) and any library option name with an
    underscore such as ``um_per_px`` become flags (``--um-per-px``); plain words (``stride``) are
    replaced only as the option an error is about or names; an API-only hint (``bits=``) becomes
    what a command-line user can do."""
    from ..frames import BITS_HINT

    text = str(error).replace(BITS_HINT, CLI_BITS_HINT)
    option = getattr(error, "option", None)
    if option in FLAGS and text.startswith(option):
        text = FLAGS[option] + text[len(option):]
    for entry in sorted(getattr(error, "options", ()), key=len, reverse=True):
        text = _as_flag(text, entry)
    from ..profiles import ProfileError

    if isinstance(error, (ModelError, ProfileError)):  # a sidecar's or a profile's keys have the same names (um_per_px)
        return text
    names = sorted((k for k in FLAGS if "_" in k and k.isidentifier()), key=len, reverse=True)
    # a results file's field keeps its name: "field 'um_per_px' must be ..." is about the file, not an option
    return re.sub(r"(?<!field ')\b(" + "|".join(names) + r")\b", lambda m: FLAGS[m.group(1)], text) if names else text
