"""The memory budget: the largest single buffer idc-edge will allocate, checked before allocating.

Sizes come from the user (a scale, an image, data-set coordinates), so one mistyped number can
ask for gigabytes. Every large buffer (a decoded image, a rescaled frame, a rebuilt slide, a
batch of patches) is checked against the budget first and refused with
:class:`~idc_edge.errors.MemoryBudgetError` saying what to change, instead of swapping the
device to a halt or dying with a traceback.

The budget is ``$IDC_EDGE_MEMORY_MB`` megabytes (MiB) per buffer, default
:data:`DEFAULT_BUDGET_MB`; a Raspberry Pi with 2 GB of RAM holds a few such buffers at once.
"""
from __future__ import annotations

import math
import os

from .errors import MemoryBudgetError

#: Default largest single buffer, in MiB (an 8K BGR frame is 95 MiB).
DEFAULT_BUDGET_MB = 1024

ENV = "IDC_EDGE_MEMORY_MB"


def budget_bytes() -> int:
    """The budget in bytes: ``$IDC_EDGE_MEMORY_MB`` (MiB, a positive number) or the default.

    Raises:
        MemoryBudgetError: the variable is set but is not a positive number.
    """
    text = os.environ.get(ENV, "").strip()
    if not text:
        return DEFAULT_BUDGET_MB << 20
    try:
        mb = float(text)
    except ValueError:
        mb = math.nan
    if not math.isfinite(mb) or mb <= 0:
        raise MemoryBudgetError(f"{ENV} must be a positive number of megabytes, got {text[:40]!r}")
    return int(min(mb, 1 << 40) * (1 << 20))


def _human(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} EiB"  # pragma: no cover


def check_buffer(shape, itemsize: int, what: str, fix: str) -> None:
    """Refuse a buffer of ``shape`` × ``itemsize`` bytes over the budget, before it is allocated.

    ``shape`` may hold floats or huge ints (from a mistyped option); non-finite or negative
    sizes are refused too.

    Args:
        shape: dimensions of the buffer (elements).
        itemsize: bytes per element.
        what: what the buffer is, e.g. ``"the rescaled frame (40000×30000 px)"``.
        fix: what the user can change, e.g. ``"lower um_per_px"``.

    Raises:
        MemoryBudgetError: the buffer would be larger than the budget.
    """
    total = float(itemsize)
    for n in shape:
        total *= float(n)
    limit = budget_bytes()
    if not math.isfinite(total) or total < 0 or total > limit:
        need = _human(total) if math.isfinite(total) else "an unbounded amount of memory"
        raise MemoryBudgetError(f"{what} would need {need}, over the memory budget of {_human(limit)} per buffer; "
                                f"{fix} (or raise {ENV})")
