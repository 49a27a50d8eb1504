"""The install metadata keeps the devices the README promises: JetPack 5's Python 3.8 (with
tflite-runtime), Debian Bookworm's setuptools, and every package of idc_edge in the wheel.

Checked on this machine by hand (README, Devices): ``pip install .`` under Python 3.8.18 with
tflite-runtime 2.14, and ``pip wheel --no-build-isolation`` with setuptools 66.1.1 (Bookworm's).
"""
from __future__ import annotations

from pathlib import Path

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
