"""The committed tiny test models are what their scripts make: run again, every file in
tests/models/ comes out byte for byte the same (so a change to the converter or the scripts shows
as a diff of the committed files, and nobody has to trust a binary they cannot remake).

Both scripts run in child processes, as a developer runs them (about 10 s each on a 2-core machine).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_tensorflow

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "models"


@needs_tensorflow
@pytest.mark.parametrize("script", ["tests.make_tiny_models", "tests.dense_model"])
def test_the_committed_tiny_models_regenerate_byte_identically(script, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    p = subprocess.run([sys.executable, "-m", script, str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    made = sorted(f.name for f in tmp_path.iterdir())
    assert made and all((MODELS / name).is_file() for name in made), made
    differ = [name for name in made if (tmp_path / name).read_bytes() != (MODELS / name).read_bytes()]
    assert not differ, f"{differ} differ from tests/models/: regenerate with `python -m {script}` and commit"
