"""Hostile inputs and outputs that used to fail quietly: options ignored, pictures read on their side,
outputs half-written over good files, paths that move with the working directory, videos cut short,
data sets stopped by one file.

Everything is real: videos and images are written and read back with OpenCV, the command line runs
in-process through ``idc_edge.cli.main`` (its exit code and stderr exactly as the program's).
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from idc_edge import cli


def call(capsys, *argv) -> tuple[int, list[str]]:
    """(exit code, non-empty stderr lines) of the command line run in-process."""
    code = cli.main([str(a) for a in argv])
    return code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def one_error_line(capsys, *argv) -> str:
    code, lines = call(capsys, *argv)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("idc-edge: error:"), (code, lines)
    return lines[0]


def write_video(path, frames) -> None:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()


@pytest.fixture
def video(tmp_path):
    path = tmp_path / "slide.avi"
    write_video(path, [np.full((64, 80, 3), 200 - 20 * i, np.uint8) for i in range(3)])
    return path


# -- camera-only options with a file ------------------------------------------------------------------------------

CAMERA_ONLY = [["--size", "640x480"], ["--fps", "5"], ["--fourcc", "MJPG"], ["--lock-exposure"],
               ["--lock-exposure", "--exposure-us", "1000"], ["--lock-white-balance"], ["--colour-gains", "1.5,1.2"],
               ["--camera-timeout", "3"], ["--fps", "0"]]


@pytest.mark.parametrize("option", CAMERA_ONLY + [["--full-decode"]], ids=" ".join)
def test_run_refuses_a_camera_only_option_with_a_file_naming_it(capsys, video, option):
    line = one_error_line(capsys, "run", "--source", video, *option, "--max-frames", 1, "--quiet")
    assert f"{option[0]} applies to a camera only" in line and "--source" in line


@pytest.mark.parametrize("option", CAMERA_ONLY, ids=" ".join)
def test_calibrate_refuses_a_camera_only_option_with_a_file_and_saves_no_profile(capsys, tmp_path, monkeypatch, option):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    glass = tmp_path / "glass.png"
    cv2.imwrite(str(glass), np.full((60, 80, 3), 230, np.uint8))
    line = one_error_line(capsys, "calibrate", "white", "--source", glass, *option, "--profile", "scope")
    assert f"{option[0]} applies to a camera only" in line
    assert not (tmp_path / "config").exists()


def test_patient_applies_to_a_data_set_folder_only(capsys, video, synthetic_dataset):
    line = one_error_line(capsys, "run", "--source", video, "--patient", "p1", "--quiet")
    assert "--patient applies to a data-set folder only" in line and "slide.avi" in line
    line = one_error_line(capsys, "run", "--camera", 0, "--patient", "p1", "--quiet")
    assert "--patient applies to a data-set folder only" in line and "a camera" in line


def test_no_white_balance_without_a_profile_is_refused(capsys, video):
    assert "--no-white-balance applies with --profile only" in one_error_line(
        capsys, "run", "--source", video, "--no-white-balance", "--quiet")


def test_camera_options_still_reach_their_own_checks_with_a_camera(capsys):
    # the value is checked as before; only its use with a file is new
    assert "--camera-timeout must be > 0" in one_error_line(capsys, "run", "--camera", 0, "--camera-timeout", 0)
