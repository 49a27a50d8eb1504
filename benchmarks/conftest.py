"""Fixtures of the pytest-benchmark suite: models, frames (the data set's or synthetic), quick mode.

    python -m pytest benchmarks/test_perf.py                     # every case
    IDC_BENCH_QUICK=1 python -m pytest benchmarks/test_perf.py   # CI: fewer cases and rounds
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import perf  # noqa: E402

from idc_edge import bench  # noqa: E402
from idc_edge.classifier import resolve_model_path  # noqa: E402

QUICK = os.environ.get("IDC_BENCH_QUICK", "") not in ("", "0")


@pytest.fixture(scope="session")
def int8_path() -> Path:
    return resolve_model_path(os.environ.get("IDC_BENCH_MODEL") or None)


@pytest.fixture(scope="session")
def float32_path(int8_path) -> Path:
    twin = bench.float_twin(str(int8_path))
    if twin is None:
        pytest.skip(f"{int8_path.name}'s sidecar names no float32 twin")
    return twin


@pytest.fixture(scope="session")
def frames_cache():
    """(width, height, um_per_px, still) -> frames, made once per session."""
    cache: dict = {}

    def get(width, height, um_per_px, n=8, still=False):
        key = (width, height, um_per_px, n, still)
        if key not in cache:
            cache[key] = perf.stage_frames(width, height, um_per_px, n, still=still)[0]
        return cache[key]
    return get
