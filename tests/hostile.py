"""Helpers shared by the red-team test files (``tests/test_hostile_round*.py``): a frame of tissue the
tiny model scores, a video file standing in for a camera, and the CLI run in this process."""
from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from typing import Callable, Iterator

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


@contextlib.contextmanager
def http_camera(answer: Callable[[socket.socket, threading.Event], None], path: str = "/video") -> Iterator[str]:
    """The address (``http://127.0.0.1:PORT`` + ``path``) of a server on localhost handing every connection,
    on a thread of its own, to ``answer(conn, stop)`` (``stop`` is set when the ``with`` block ends); a
    connection's socket errors (the client left) end its answer quietly."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn):
        with conn:
            try:
                answer(conn, stop)
            except OSError:
                pass

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{path}"
    finally:
        stop.set()
        listener.close()


@contextlib.contextmanager
def mjpeg_stream(part: Callable[[int], bytes], every_s: float = 0.05) -> Iterator[str]:
    """The address of an HTTP camera on localhost answering every connection with a Motion-JPEG stream
    (``multipart/x-mixed-replace``) whose ``n``-th part of a connection is ``part(n)``, one every
    ``every_s`` seconds until the client leaves."""

    def answer(conn, stop):
        conn.recv(65536)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=xx\r\n\r\n")
        sent = 0
        while not stop.is_set():
            data = part(sent)
            conn.sendall(b"--xx\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data) + data + b"\r\n")
            sent += 1
            stop.wait(every_s)

    with http_camera(answer) as url:
        yield url


def cli(capsys, *args) -> tuple[int, str]:
    """(exit code, standard error) of ``idc-edge ARGS`` run in this process."""
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    """The one ``idc-edge: error:`` line standard error must be (asserted)."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("idc-edge: error: "), err
    return lines[0]
