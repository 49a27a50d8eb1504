"""The dense pass on the command line: stride validation, --no-dense, and what info says."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2

from conftest import frame_with_blob


def idc_edge(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_a_stride_off_the_output_stride_is_one_line_with_exit_2_and_no_dense_takes_it(dense_int8, tmp_path):
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), frame_with_blob(shape=(240, 320)))
    bad = idc_edge("run", "--source", image, "--model", dense_int8, "--stride", 23, "--quiet")
    assert bad.returncode == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("idc-edge: error: stride 23 px is not a multiple")
    assert "use one of 5, 10, 15" in lines[0] and "--no-dense" in lines[0] and "Traceback" not in bad.stderr
    record = tmp_path / "r.jsonl"
    ok = idc_edge("run", "--source", image, "--model", dense_int8, "--stride", 23, "--no-dense", "--quiet",
                  "--record", record)
    assert ok.returncode == 0, ok.stderr
    frames = [line for line in map(json.loads, record.read_text().splitlines()) if "patches" in line]
    assert len(frames) == 1 and frames[0]["patches"] > 0


def test_info_says_whether_the_model_has_a_dense_pass(dense_int8, tiny_int8):
    out = idc_edge("info", "--model", dense_int8)
    assert out.returncode == 0, out.stderr
    assert "output stride 5 px: --stride must be a multiple of 5" in out.stdout
    plain = idc_edge("info", "--model", tiny_int8)
    assert "dense     no (patch by patch; any --stride)" in plain.stdout
