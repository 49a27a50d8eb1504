"""README's Python example runs as written (from the repository root, with the data beside it)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs():
    if not (ROOT.parent / "shared" / "idc_patches" / "8867").is_dir():
        pytest.skip("the README example reads ../shared/idc_patches/8867, which is absent")
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert blocks, "README has no python example"
    p = subprocess.run([sys.executable, "-c", blocks[0]], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "frame 0: IDC in" in p.stdout
