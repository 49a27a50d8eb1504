"""The command line as a user runs it: start-up to the first result and peak memory of an
``idc-edge run`` process, measured from the outside."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..record import is_session_header, read_records


def _peak_rss_kb(pid: int) -> float:
    """Peak resident memory so far (VmHWM) of a running process in KiB; 0 where /proc is absent."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


@dataclass(frozen=True)
class ProcessRun:
    """One ``idc-edge run`` process: wall time, first result, frames, peak memory.

    ``fps`` is frames per second from the first result to the end of the stream (start-up
    excluded; NaN for a single frame); ``wall_s`` is the whole process, start-up and exit included.
    """

    command: str
    frames: int
    wall_s: float
    first_result_s: float
    fps: float
    peak_rss_mb: float


def _is_header(line: bytes) -> bool:
    try:
        return is_session_header(json.loads(line))
    except ValueError:
        return False


# ``idc-edge`` in an isolated child (``python -I``): nothing is imported from the working directory
# (a json.py there would run). The folder this very idc_edge was imported from comes first, so the
# child measures the same code as the parent even where another version is installed (a checkout
# next to a pip-installed copy); the parent's other import folders come after site-packages.
_CHILD = ("import json, sys; front, back = json.loads(sys.argv.pop(1)); sys.path.insert(0, front); "
          "sys.path.extend(p for p in back if p not in sys.path); from idc_edge.cli import entry; entry()")


def _child_folders() -> list:
    from ..modelcheck import import_folders

    return [str(Path(__file__).resolve().parents[2]), import_folders()]


def run_process(args: Sequence[str], timeout_s: float = 300.0) -> ProcessRun:
    """Run ``python -m idc_edge run ARGS --record TMP --quiet`` and measure it from the outside.

    ``first_result_s`` is from just before the process is started to the moment its first frame's
    JSONL line (flushed right after the first result; the session header before it does not count)
    appears; ``frames`` counts the frame lines; ``peak_rss_mb`` is the process's peak
    resident memory from the kernel (Linux/macOS).
    """
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "first.jsonl"
        cmd = [sys.executable, "-I", "-c", _CHILD, json.dumps(_child_folders()), "run", *map(str, args),
               "--record", str(record), "--quiet"]
        t0 = time.perf_counter()
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
            first, peak_kb, seen_at_first = float("nan"), 0.0, 0
            last_growth, seen, reader, pending = float("nan"), 0, None, b""
            while proc.poll() is None:
                if reader is None and record.exists():
                    reader = open(record, "rb")
                pending += reader.read() if reader is not None else b""
                done, _, pending = pending.rpartition(b"\n")
                new = sum(1 for line in done.split(b"\n") if line and not _is_header(line))
                if new:
                    seen, last_growth = seen + new, time.perf_counter() - t0
                    if np.isnan(first):
                        first = last_growth
                        seen_at_first = seen
                peak_kb = max(peak_kb, _peak_rss_kb(proc.pid))
                if time.perf_counter() - t0 > timeout_s:
                    proc.kill()
                    proc.wait()
                    break
                time.sleep(0.002 if np.isnan(first) else 0.02)
            wall = time.perf_counter() - t0
            if reader is not None:
                reader.close()
            err.seek(0)
            stderr = err.read().decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(f"idc-edge run failed ({proc.returncode}): {stderr.strip()[-500:]}")
        lines = read_records(record) if record.exists() else []
        if np.isnan(first) and lines:
            first = wall
    # frames per second between the first and the last line seen while the process ran
    fps = (seen - seen_at_first) / (last_growth - first) if seen > seen_at_first and last_growth > first \
        else float("nan")
    return ProcessRun(" ".join(["idc-edge", "run", *map(str, args)]), len(lines), wall, first, fps, peak_kb / 1024.0)
