"""Command-line flags bound to fields of the library's option dataclasses, declared once.

A :class:`Bound` entry states a flag, how argparse reads its text (a converter only: the range is
checked by the dataclass the value goes into), its help, and the field it fills, e.g.
``Bound("--stride", "detector.stride", ...)``. From a table of them come the parser's arguments
(:func:`add_bound`), the keyword arguments of the dataclasses (:func:`bound_values`) and the
command line's words for the library's option names in errors (``stride`` → ``--stride``,
``dense=False`` → ``--no-dense``, see :func:`idc_edge.cli.options.in_cli_words`). Adding an option
to ``idc-edge run`` is then one entry in its table plus the dataclass field.

Only flags that fill one field are bound. Flags that choose outputs (``--serve``, ``--record``),
describe the capture (``--camera``, ``--size``, ``--profile``: shared with ``calibrate`` and
merged with a profile in :mod:`.camera_setup`) or set several fields at once (``--no-gates``)
stay plain ``add_argument`` calls: a table for them would be longer than the code it replaced.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from .options import FLAGS, number, path, whole_number


@dataclass(frozen=True)
class Bound:
    """One flag and the option field it fills.

    Attributes:
        flag: the flag, ``--stride``; argparse's ``dest`` is made from it (``stride``).
        field: ``"<part>.<field>"``: which options object (``detector`` for ``DetectorOptions``,
            ``run`` for ``RunConfig``) and which of its fields.
        help: the ``--help`` text.
        type: text → value for a flag that takes one (argparse's ``type``).
        metavar: the value's name in ``--help``.
        default: argparse's default; None leaves the field at the dataclass's default.
        switch: for a flag that takes no value, what the field gets when it is given
            (``--no-dense`` → ``False``, ``--sequential`` → ``True``); not given, the field keeps the
            dataclass's default.
        repeat: the flag may be given more than once; the field gets a tuple of the values.
    """

    flag: str
    field: str
    help: str
    type: Optional[Callable[[str], Any]] = None
    metavar: Optional[str] = None
    default: Any = None
    switch: Optional[bool] = None
    repeat: bool = False

    @property
    def part(self) -> str:
        return self.field.split(".", 1)[0]

    @property
    def name(self) -> str:
        """The field's name as the library spells it (``num_threads``)."""
        return self.field.split(".", 1)[1]

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


def add_bound(parser: argparse.ArgumentParser, table: Sequence[Bound]) -> None:
    """Add the flags of ``table`` to ``parser`` and teach the error wording their library names."""
    for b in table:
        if b.switch is not None:
            parser.add_argument(b.flag, action="store_true", help=b.help)
            FLAGS.setdefault(b.name if b.switch else f"{b.name}={b.switch}", b.flag)
        else:
            parser.add_argument(b.flag, type=b.type, metavar=b.metavar, default=b.default, help=b.help,
                                action="append" if b.repeat else "store")
            FLAGS.setdefault(b.name, b.flag)


def bound_values(args: argparse.Namespace, table: Sequence[Bound], part: str) -> dict:
    """The keyword arguments for options object ``part`` that the parsed ``args`` give (flags not
    given are left out, so the dataclass's defaults apply)."""
    out = {}
    for b in table:
        value = getattr(args, b.dest)
        if b.part != part or value is None or value is False:
            continue
        out[b.name] = b.switch if b.switch is not None else (tuple(value) if b.repeat else value)
    return out


#: The model options every command that loads a model takes (they fill ``DetectorOptions`` in ``run``).
MODEL_FLAGS = (
    Bound("--model", "detector.model_path", "a .tflite model with its .json sidecar (default: the shipped int8 model)",
          path("--model"), "PATH"),
    Bound("--threshold", "detector.threshold", "decision threshold 0-1 (default: the model's sidecar; its "
          "field-context threshold where windows are decided with their neighbours)", number("--threshold")),
    Bound("--no-context", "detector.context", "decide every window on its own score (default: with its neighbours' "
          "scores when the model's sidecar has a field context)", switch=False),
    Bound("--threads", "detector.num_threads", "interpreter threads (default 1)", whole_number("--threads"), default=1),
)


#: Patch by patch instead of the model's dense pass: ``run``, and ``classify`` for images larger than a patch.
NO_DENSE = Bound("--no-dense", "detector.dense",
                 "classify patch by patch even when the model has a dense pass (any --stride then)", switch=False)


#: Background too: ``run``, and ``classify`` for patch images and larger images alike.
NO_MASK = Bound("--no-mask", "detector.tissue_mask", "classify background patches too", switch=False)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    add_bound(parser, MODEL_FLAGS)
