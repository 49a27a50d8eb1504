"""The rules for option values, in one place: the option dataclasses call these when created.

Each function takes the option's name as the library spells it (``stride``, ``um_per_px``,
``num_threads``) and its value, and returns the value as a plain Python ``int``/``float``/``bool``
(numpy scalars such as ``np.int64(25)`` or ``np.float32(0.5)`` are accepted and converted). A bad
value raises :class:`~idc_edge.errors.OptionError` whose message starts with the option's name and
whose ``option`` attribute is that name, so the command line can say ``--stride`` instead.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Any, Optional

import numpy as np

from .errors import OptionError

#: The longest wait for a camera or a stream, in seconds (a day): longer values overflow the waits underneath.
MAX_WAIT_S = 86400.0

#: Interpreter threads allowed per CPU core: more only adds OS threads (one pool per batch size
#: and interpreter) and slows the model down; 1000 threads used to start thousands of them.
THREADS_PER_CORE = 4


#: Microns per pixel a camera on a microscope can have, µm/px: from 0.01 (finer than any objective
#: resolves) to 100 (a macro lens); a measured, saved or sidecar scale outside is a mistake.
UM_PER_PX_RANGE = (0.01, 100.0)

#: Tick spacings of stage micrometers, µm: from 1 µm to 5 mm.
SPACING_UM_RANGE = (1.0, 5000.0)


def did_you_mean(key: Any, known, holder: str) -> str:
    """The end of an "unknown key" message: `` (did you mean um_per_px?)`` for the closest of
    ``known`` to a mistyped ``key``, else ``; <holder> holds only a, b, c`` (``holder``: "a profile")."""
    import difflib

    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else f"; {holder} holds only {', '.join(known)}"


def _fail(option: str, problem: str, value: Any) -> OptionError:
    return OptionError(f"{option} {problem}, got {value!r:.60}", option=option)


def whole_number(option: str, value: Any, minimum: int = 1, maximum: Optional[int] = None, unit: str = "") -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]``; booleans and non-whole numbers are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(option, f"must be a whole number{unit and ' of ' + unit}", value)
    value = int(value)
    if value < minimum:
        raise _fail(option, f"must be >= {minimum}{unit and ' (' + unit + ')'}", value)
    if maximum is not None and value > maximum:
        raise _fail(option, f"must be <= {maximum}{unit and ' (' + unit + ')'}", value)
    return value


def positive_number(option: str, value: Any, unit: str = "", maximum: float = math.inf) -> float:
    """``value`` as a finite ``float`` > 0 and <= ``maximum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise _fail(option, f"must be > 0{unit and ' (' + unit + ')'}", value)
    if value > maximum:
        raise _fail(option, f"must be at most {maximum:g}{unit and ' (' + unit + ')'}", value)
    return float(value)


def number(option: str, value: Any, minimum: float, maximum: float, unit: str = "") -> float:
    """``value`` as a finite ``float`` in ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not minimum <= value <= maximum:
        raise _fail(option, f"must be a number from {minimum:g} to {maximum:g}{unit and ' (' + unit + ')'}", value)
    return float(value)


def spacing_um(option: str, value: Any) -> float:
    """A stage micrometer's tick spacing in µm, within :data:`SPACING_UM_RANGE` (0.01 is mm typed as µm)."""
    spacing = positive_number(option, value, "µm between the micrometer's ticks")
    low, high = SPACING_UM_RANGE
    if not low <= spacing <= high:
        likely = (f"mm typed as µm? {spacing:g} mm is {spacing * 1000:g} µm" if spacing < low
                  else f"nm typed as µm? {spacing:g} nm is {spacing / 1000:g} µm")
        raise OptionError(f"{option} {spacing:g} µm is not a stage micrometer's tick spacing ({low:g} to {high:g} µm); "
                          f"{likely}", option=option)
    return spacing


def um_per_px(option: str, value: Any) -> float:
    """A frame scale in µm per pixel: a finite number within :data:`UM_PER_PX_RANGE`.

    Checked where the option enters, so a mistyped scale (``1e-300``, ``1e308``, nm typed as µm) is
    named as such rather than reaching a memory-budget error or a frame of one pixel.
    """
    low, high = UM_PER_PX_RANGE
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= value <= high:
        raise _fail(option, f"must be from {low:g} to {high:g} µm per pixel (a microscope camera's scale; "
                            f"the data set's is 4)", value)
    return float(value)


def implausible_um_per_px(value: float) -> Optional[str]:
    """Why ``value`` (µm/px) cannot be a microscope camera's scale (outside :data:`UM_PER_PX_RANGE`),
    printed with ``%g``; None when it can. The caller names where the value came from."""
    low, high = UM_PER_PX_RANGE
    if low <= value <= high:
        return None
    return f"{value:g} µm/px, outside the {low:g} to {high:g} µm/px a microscope camera can have"


def probability(option: str, value: Any) -> float:
    """``value`` as a ``float`` in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0:
        raise _fail(option, "must be between 0 and 1 (a probability)", value)
    return float(value)


def flag(option: str, value: Any) -> bool:
    """``value`` as a ``bool`` (Python or numpy)."""
    if not isinstance(value, (bool, np.bool_)):
        raise _fail(option, "must be True or False", value)
    return bool(value)


def power_of_two(option: str, value: Any) -> int:
    """A whole number >= 1 that is a power of two (a batch size)."""
    n = whole_number(option, value)
    if n & (n - 1):
        raise _fail(option, "must be a power of two >= 1", value)
    return n


def max_threads() -> int:
    """The most interpreter threads allowed here: :data:`THREADS_PER_CORE` per CPU core."""
    return THREADS_PER_CORE * max(1, os.cpu_count() or 1)


def threads(option: str, value: Any) -> int:
    """Interpreter threads: a whole number from 1 to :func:`max_threads`."""
    n = whole_number(option, value)
    limit = max_threads()
    if n > limit:
        raise _fail(option, f"must be <= {limit} ({THREADS_PER_CORE} per CPU core; this device has "
                            f"{os.cpu_count() or 1}, and more threads only slow the model down)", value)
    return n
