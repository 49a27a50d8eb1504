"""A second hostile round, of the same classes as the first: empty values of every option,
profiles that are not profiles, outputs that would replace someone else's file, signed frames.
Fast: the command line runs in this process where no signal can be involved.
"""
from __future__ import annotations

import argparse

import pytest

from test_hostile_cli import one_error_line, run_here

from idc_edge import cli


def _value_options():
    """(command, option) for every option of every command that takes a value."""
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for command, sub in commands.items():
        for action in sub._actions:
            if action.option_strings and action.nargs != 0:
                yield command, action.option_strings[-1]


_LEADING = {"calibrate": ["white"], "report": ["r.jsonl"], "classify": ["a.png"], "evaluate": ["data"]}


@pytest.mark.parametrize("command,option", sorted(set(_value_options())))
@pytest.mark.parametrize("value", ["", "  "])
def test_every_option_refuses_an_empty_value_instead_of_meaning_a_default(command, option, value):
    # `--serve "$PORT"` with PORT unset served nothing, without a word
    line = one_error_line(run_here(command, *_LEADING.get(command, []), f"{option}={value}"))
    assert "empty" in line and option in line
