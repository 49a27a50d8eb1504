"""Paths from environment variables, read one way everywhere.

A relative path in an environment variable would silently mean another folder whenever the
working directory changes (a service started from ``/``, a script that ``cd``s, a library user
calling ``os.chdir``). So a relative value is made absolute against the working directory the
process **started** in (:data:`START_DIR`, taken when idc-edge is imported), every time it is
read: the same folder for the whole run. ``~`` is expanded. A value that is empty or only blanks
counts as unset (an unset shell variable expanded to ``""``). The XDG base-directory variables
follow their specification instead: a relative value is invalid there and ignored.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

from .errors import OptionError


def _start_dir() -> Optional[str]:
    try:
        return os.getcwd()
    except OSError:  # the folder the process started in was deleted
        return None


#: the working directory when idc-edge was imported (None when it no longer existed then)
START_DIR = _start_dir()


def env_path(var: str, env: Optional[Mapping[str, str]] = None) -> Optional[Path]:
    """The absolute path in environment variable ``var``, or None when it is unset, empty or blank.

    Raises:
        OptionError: the value is relative and the starting working directory is unknown.
    """
    text = (os.environ if env is None else env).get(var)
    if text is None or not text.strip():
        return None
    if text == "~" or text.startswith("~" + os.sep):
        text = str(home()) + text[1:]
    text = os.path.expanduser(text)  # ~user
    if os.path.isabs(text):
        return Path(text)
    if START_DIR is None:
        raise OptionError(f"{var}={text!r} is a relative path and the working directory idc-edge started in no "
                          "longer exists; give an absolute path")
    return Path(START_DIR) / text


def start_relative(*parts: str) -> Path:
    """``parts`` joined onto :data:`START_DIR` (the current directory when that is unknown), normalised."""
    return Path(os.path.normpath(os.path.join(START_DIR or os.curdir, *parts)))


def xdg_dir(var: str, fallback: str, env: Optional[Mapping[str, str]] = None) -> Path:
    """An XDG base directory: ``var`` when it holds an absolute path, else ``~/<fallback>`` (the
    specification: "If an implementation encounters a relative path in any of these variables it
    should consider the path invalid and ignore it"; empty counts as unset)."""
    text = (os.environ if env is None else env).get(var) or ""
    return Path(text) if os.path.isabs(text) else home(env) / fallback


def home(env: Optional[Mapping[str, str]] = None) -> Path:
    """The user's home folder: ``$HOME`` when it is an absolute path; when it is unset, empty, blank
    or relative (``HOME=`` from an unset variable, a service's environment), the account's home from
    the password database, as for an unset one. Python's ``Path.home()`` took ``HOME=""`` as ``/``:
    profiles were read from and saved to ``/.config/idc-edge/profiles``."""
    text = (os.environ if env is None else env).get("HOME") or ""
    if text.strip() and os.path.isabs(text):
        return Path(text)
    try:
        import pwd

        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError, OSError):  # no password database (Windows, a container's odd user)
        return Path(os.path.expanduser("~")) if text.strip() else Path(os.path.abspath(os.sep))
