"""The install metadata keeps the devices the README promises: JetPack 5's Python 3.8 (with
tflite-runtime), Debian Bookworm's setuptools, and every package of idc_edge in the wheel.

Checked on this machine by hand (README, Devices): ``pip install .`` under Python 3.8.18 with
tflite-runtime 2.14, and ``pip wheel --no-build-isolation`` with setuptools 66.1.1 (Bookworm's).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_python_3_8_installs_with_tflite_runtime_and_tomli():
    project = PYPROJECT["project"]
    assert project["requires-python"] == ">=3.8"
    deps = " | ".join(project["dependencies"])
    assert "tflite-runtime" in deps and "python_version < '3.9'" in deps
    assert "ai-edge-litert" in deps and "python_version >= '3.9'" in deps
    assert "tomli" in deps and "python_version < '3.11'" in deps


def test_licence_and_build_requirement_are_what_old_setuptools_reads():
    # setuptools < 77 (all Python 3.8 gets, and Debian Bookworm's 66) refuses the SPDX string form
    assert PYPROJECT["project"]["license"] == {"text": "Apache-2.0"}
    requires = PYPROJECT["build-system"]["requires"]
    assert any(r.replace(" ", "").startswith("setuptools>=61") for r in requires)


def test_every_package_of_idc_edge_is_in_the_wheel():
    packages = PYPROJECT["tool"]["setuptools"]["packages"]
    if isinstance(packages, dict):  # discovery: every idc_edge subpackage is found
        assert "idc_edge*" in packages["find"]["include"]
        return
    found = {".".join(p.relative_to(ROOT).parts[:-1]) for p in (ROOT / "idc_edge").rglob("__init__.py")}
    assert found <= set(packages), sorted(found - set(packages))


def _python38():
    """A Python 3.8 interpreter here (pyenv's, or on PATH), or None."""
    import glob
    import shutil

    for candidate in [os.environ.get("IDC_EDGE_PYTHON38"), shutil.which("python3.8"),
                      *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python")))]:
        if candidate and os.path.exists(candidate):
            probe = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
                                   capture_output=True, text=True)
            if probe.returncode == 0 and "(3, 8)" in probe.stdout:
                return candidate
    return None


@pytest.mark.slow
def test_pip_install_works_on_python_3_8_and_the_commands_run(tmp_path):
    """JetPack 5's Python: a fresh venv, ``pip install .`` (tflite-runtime as the interpreter), then
    real commands. Catches code that only newer Pythons parse or run. About a minute (pip's cache)."""
    python = _python38()
    if python is None:
        pytest.skip("no Python 3.8 here (pyenv install 3.8, or set IDC_EDGE_PYTHON38)")
    src = tmp_path / "src"
    shutil.copytree(ROOT / "idc_edge", src / "idc_edge", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(src)], capture_output=True, text=True,
                         timeout=900)
    if pip.returncode != 0 and "Could not find a version" in pip.stderr + pip.stdout:
        pytest.skip(f"the package index is not reachable: {pip.stderr.strip()[-300:]}")
    assert pip.returncode == 0, pip.stderr[-3000:]
    exe = str(venv / "bin" / "idc-edge")
    info = subprocess.run([exe, "info", "--json"], capture_output=True, text=True, timeout=300)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["backend"]["name"] == "tflite-runtime"
    image = tmp_path / "frame.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(image), np.clip(rng.normal(170, 30, (240, 320, 3)), 0, 255).astype(np.uint8))
    run = subprocess.run([exe, "run", "--source", str(image), "--record", str(tmp_path / "r.jsonl"), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert "in_focus" in lines[-1] and "exposure_ok" in lines[-1]
    cams = subprocess.run([exe, "cameras", "--json"], capture_output=True, text=True, timeout=300)
    assert cams.returncode == 0 and "v4l2" in json.loads(cams.stdout)
