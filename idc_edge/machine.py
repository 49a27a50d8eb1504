"""What the numbers were measured on: one description of the machine for every report."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU model, cores, OS, Python, library versions."""
    cpu = platform.processor() or platform.machine()
    info: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep:
                    info.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    # x86: "model name"; Raspberry Pi OS: "Model" (the board) or "Hardware"; other ARM: "CPU part"
    for key in ("model name", "hardware", "model", "cpu part"):
        if info.get(key) and not info[key].isdigit():
            cpu = info[key]
            break
    try:
        model = Path("/proc/device-tree/model").read_bytes().rstrip(b"\0").decode()
    except OSError:
        model = None
    from .backend import get_backend

    backend = get_backend()
    return {"cpu": cpu, "board": model, "cores": os.cpu_count(), "machine": platform.machine(),
            "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "numpy": np.__version__, "opencv": cv2.__version__, "backend": f"{backend.name} {backend.version}",
            "opencv_threads": cv2.getNumThreads()}


def machine_line(info: Optional[dict[str, Any]] = None) -> str:
    """:func:`machine` (or ``info``, one of its results) as one line for reports and tables."""
    m = machine() if info is None else info
    board = f" ({m['board']})" if m.get("board") else ""
    return (f"{m['cpu']}{board}, {m['cores']} cores, {m['system']}, Python {m['python']}, {m['backend']}, "
            f"OpenCV {m['opencv']}")
