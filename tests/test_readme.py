"""README's Python examples run as written (from the repository root, with the data beside it)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


def run_block(code: str) -> subprocess.CompletedProcess:
    if not (ROOT.parent / "shared" / "idc_patches" / "8867").is_dir():
        pytest.skip("the README examples read ../shared/idc_patches/8867, which is absent")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_readme_has_its_python_examples():
    assert len(BLOCKS) >= 2, "README has lost a python example"


def test_readme_python_example_runs():
    p = run_block(BLOCKS[0])
    assert p.returncode == 0, p.stderr
    assert "frame 0: IDC in" in p.stdout


def test_readme_session_example_runs():
    p = run_block(BLOCKS[1])
    assert p.returncode == 0, p.stderr
    assert re.search(r"^60 frame\(s\) in [\d.]+ s", p.stdout, re.M), p.stdout


def test_readme_gates_off_options_are_what_run_no_gates_uses():
    """The inline `DetectorOptions(...)` README gives for switching the gates off is valid, imported as
    it says, and switches off the same gates as `run --no-gates`."""
    from idc_edge import DetectorOptions
    from idc_edge.cli.run import gates_off
    from idc_edge.focus import ColourOptions, ExposureOptions, FocusOptions, NoiseOptions

    (text,) = re.findall(r"`(DetectorOptions\(focus=FocusOptions\(enabled=False\).*?\))`", README, re.S)
    names = {"DetectorOptions": DetectorOptions, "FocusOptions": FocusOptions, "ExposureOptions": ExposureOptions,
             "ColourOptions": ColourOptions, "NoiseOptions": NoiseOptions}
    options = eval(" ".join(text.split()), {"__builtins__": {}}, names)  # noqa: S307 (README's own text)
    assert options == DetectorOptions(**gates_off(True))
