"""Which file system a path is on: kernel pseudo file systems (``/proc``, ``/sys``) are no place for output.

A file under ``/proc`` or ``/sys`` is a regular file to ``stat`` and even opens for writing as
root, but a write into it is the kernel's business: ``/proc/version`` answers every write with
``EIO`` (which reads like a failing disk), a new name there cannot be created at all (``ENOENT``
for a folder that plainly exists). Outputs ask :func:`pseudo_file_system` first and say where
the path really is. Linux only (``/proc/self/mountinfo``); elsewhere nothing is known and nothing
is refused.
"""
from __future__ import annotations

import os
import re
from typing import Optional

#: kernel file systems that hold no user files (a write reaches the kernel, not a disk)
PSEUDO_TYPES = frozenset({
    "proc", "sysfs", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs", "configfs", "pstore", "bpf",
    "efivarfs", "fusectl", "binfmt_misc", "mqueue", "devpts", "nsfs", "rpc_pipefs", "selinuxfs",
})

MOUNTINFO = "/proc/self/mountinfo"


def _unescape(field: str) -> str:
    """A mountinfo path field with its octal escapes (``\\040`` for a blank, ``\\134`` for a backslash) decoded."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def file_system_of(path: str, mountinfo: str = MOUNTINFO) -> Optional[tuple[str, str]]:
    """(file system type, mount point) of the mount holding ``path`` (resolved through links), or
    None when that cannot be told (no ``/proc``, another system)."""
    target = os.path.realpath(path)
    best: Optional[tuple[str, str]] = None
    try:
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        fields, after = left.split(), right.split()
        if not sep or len(fields) < 5 or not after:
            continue
        mount = _unescape(fields[4])
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and (best is None or len(mount) >= len(best[1])):  # the last, deepest mount wins
            best = (after[0], mount)
    return best


def pseudo_file_system(path: str, mountinfo: str = MOUNTINFO) -> Optional[tuple[str, str]]:
    """(type, mount point) when ``path`` is on a kernel pseudo file system (:data:`PSEUDO_TYPES`), else None."""
    found = file_system_of(path, mountinfo)
    return found if found and found[0] in PSEUDO_TYPES else None
