"""Helpers shared by the red-team test files (``tests/test_hostile_round*.py``): a frame of tissue the
tiny model scores, a video file standing in for a camera, and the CLI run in this process."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from idc_edge.cli import main

TINY = str(Path(__file__).resolve().parent / "models" / "tiny_int8.tflite")


def tissue_frame(width: int = 200, height: int = 150, glass_rows: int = 0) -> np.ndarray:
    """A pink field with a purple block: tissue the tiny model scores (BGR uint8); its top
    ``glass_rows`` rows are bare glass (for the white-drift check)."""
    frame = np.full((height, width, 3), (200, 150, 220), np.uint8)
    frame[height // 4: 3 * height // 4, width // 4: 3 * width // 4] = (150, 60, 160)
    frame[:glass_rows] = 245
    return frame


def write_video(path, frames: int = 5, fourcc: str = "MJPG", frame: np.ndarray | None = None) -> Path:
    """A video file of ``frames`` copies of ``frame`` (default :func:`tissue_frame`) at 10 fps."""
    frame = tissue_frame() if frame is None else frame
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10, (frame.shape[1], frame.shape[0]))
    assert writer.isOpened()
    for _ in range(frames):
        writer.write(frame)
    writer.release()
    return Path(path)


def fake_camera(path: Path, n: int = 6, frame: np.ndarray | None = None) -> Path:
    """A Motion-JPEG video (:func:`write_video`) under a name without a suffix: opened by ``--camera``
    as a capture device."""
    return write_video(str(path) + ".avi", n, frame=frame).rename(path)


def cli(capsys, *args) -> tuple[int, str]:
    """(exit code, standard error) of ``idc-edge ARGS`` run in this process."""
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    """The one ``idc-edge: error:`` line standard error must be (asserted)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("idc-edge: error: "), err
    return lines[0]
