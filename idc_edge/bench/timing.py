"""Timing that survives a busy machine: variants run interleaved round by round, ratios are
medians of per-round ratios."""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np


def interleaved(funcs: dict[str, Callable[[], Any]], rounds: int = 7, min_round_s: float = 0.05,
                max_calls: int = 10_000, clock: Callable[[], float] = time.perf_counter) -> dict[str, np.ndarray]:
    """Seconds per call of each function, one value per round, measured interleaved.

    Each function is first called once (warm-up) and its calls per round are set so one round
    takes about ``min_round_s``. Every round then runs each function in turn, starting with a
    different one each round so none always runs first. ``clock`` is wall time by default;
    ``time.process_time`` measures this process's CPU time (all its threads) instead, which other
    processes on a shared machine do not inflate.

    Returns:
        name → float64 ``[rounds]`` seconds per call.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    names = list(funcs)
    calls = {}
    for name in names:
        t = clock()
        funcs[name]()
        once = max(clock() - t, 1e-6)
        calls[name] = int(min(max_calls, max(1, round(min_round_s / once))))
    out = {name: np.empty(rounds) for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            fn, n = funcs[name], calls[name]
            t = clock()
            for _ in range(n):
                fn()
            out[name][r] = (clock() - t) / n
    return out


def ratio(slow: np.ndarray, fast: np.ndarray) -> float:
    """Median over rounds of ``slow / fast`` (how many times faster ``fast`` is)."""
    return float(np.median(np.asarray(slow) / np.asarray(fast)))
