"""What the browser live view costs the run: frames per second of the same 1080p run with and
without ``--serve`` (one viewer connected), measured interleaved round by round in one process.

    python -m benchmarks.serve_cost [--quick] [--json]

Frames are made here (synthetic H&E at 1 µm/px, a moving stage): no data needed. Besides frames
per second, which other jobs on a shared machine disturb, it reports the process's CPU time per
frame (every thread), what a device with nothing else to do would spend.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.request
from typing import Optional

import numpy as np


from idc_edge.machine import machine  # noqa: E402
from idc_edge.bench.synthetic import camera_frames, slide_for  # noqa: E402
from idc_edge.detector import Detector, DetectorOptions  # noqa: E402
from idc_edge.session import RunConfig, Session  # noqa: E402
from idc_edge.sinks import LiveView, Sink  # noqa: E402
from idc_edge.sources.base import Frame, FrameSource  # noqa: E402


class _Frames(FrameSource):
    def __init__(self, frames, fps=30.0):
        super().__init__("synthetic 1080p stage")
        self.frames, self.fps = frames, fps

    def __iter__(self):
        for i, f in enumerate(self.frames):
            yield Frame(i, i / self.fps, f)


class _Clock(Sink):
    """Times from the ``skip``-th frame to the last (start-up and shut-down left out)."""

    name = "clock"
    delivery = "inline"

    def __init__(self, skip=5):
        self.skip, self.n, self.t0, self.t1, self.c0, self.c1 = skip, 0, None, None, None, None

    def write(self, frame):
        self.n += 1
        if self.n == self.skip:
            self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.t1, self.c1 = time.perf_counter(), time.process_time()

    def fps(self) -> float:
        return (self.n - self.skip) / (self.t1 - self.t0)

    def cpu_ms_per_frame(self) -> float:
        """CPU time of the whole process (every thread) per frame: what a device with nothing else
        to do would have to spend; less disturbed by other jobs on a shared machine than fps."""
        return 1000.0 * (self.c1 - self.c0) / (self.n - self.skip)


def _viewer(url: str, stop: threading.Event, counts: list) -> None:
    deadline = time.monotonic() + 30
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "stream.mjpg", timeout=10) as r:
                while not stop.is_set():
                    line = r.readline()
                    if not line:
                        return
                    if line.startswith(b"--"):
                        counts[0] += 1
            return
        except OSError:
            time.sleep(0.05)


def _one_run(detector, frames, serve: bool) -> tuple[float, float, int]:
    clock = _Clock()
    sinks = [clock]
    stop, counts, viewer = threading.Event(), [0], None
    if serve:
        view = LiveView("127.0.0.1", 0)
        sinks.append(view)
        viewer = threading.Thread(target=_viewer, args=(view.url, stop, counts), daemon=True)
        viewer.start()
        time.sleep(0.05)
    Session(RunConfig(camera=0), sinks, source=_Frames(frames), detector=detector).run()
    stop.set()
    if viewer is not None:
        viewer.join(5)
    return clock.fps(), clock.cpu_ms_per_frame(), counts[0]


def measure(quick: bool = False, model: Optional[str] = None) -> dict:
    n = 40 if quick else 90
    rounds = 3 if quick else 7
    frames = camera_frames(slide_for(1920, 1080, 1.0, n, 12), 1920, 1080, 1.0, n, step_px=12)
    out = {"with": [], "without": [], "cpu_with": [], "cpu_without": [], "served_frames": []}
    with Detector(DetectorOptions(model_path=model, um_per_px=1.0, stride=25)) as det:
        _one_run(det, frames[:10], False)  # warm-up
        for r in range(rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            for serve in order:
                fps, cpu, served = _one_run(det, frames, serve)
                out["with" if serve else "without"].append(fps)
                out["cpu_with" if serve else "cpu_without"].append(cpu)
                if serve:
                    out["served_frames"].append(served)
    ratios = np.array(out["with"]) / np.array(out["without"])
    cpu = np.array(out["cpu_without"]) / np.array(out["cpu_with"])  # > 1 would mean serving is free
    return {"frames": n, "rounds": rounds, "fps_without": float(np.median(out["without"])),
            "fps_with_serve": float(np.median(out["with"])), "ratio": float(np.median(ratios)),
            "cost_percent": float(100 * (1 - np.median(ratios))),
            "cpu_ms_per_frame_without": float(np.median(out["cpu_without"])),
            "cpu_ms_per_frame_with_serve": float(np.median(out["cpu_with"])), "cpu_ratio": float(np.median(cpu)),
            "cpu_cost_percent": float(100 * (1 - np.median(cpu))), "served_frames_per_run": out["served_frames"],
            "machine": machine()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    r = measure(a.quick)
    if a.json:
        print(json.dumps(r))
    else:
        print(f"1920x1080 at 1 um/px, stride 25, {r['frames']} frames x {r['rounds']} rounds interleaved: "
              f"{r['fps_without']:.1f} fps without, {r['fps_with_serve']:.1f} fps with --serve and one viewer "
              f"(median ratio {r['ratio']:.3f}: {r['cost_percent']:.1f} % of the frame rate); CPU per frame "
              f"{r['cpu_ms_per_frame_without']:.1f} vs {r['cpu_ms_per_frame_with_serve']:.1f} ms (median ratio "
              f"{r['cpu_ratio']:.3f}: serving costs {r['cpu_cost_percent']:.1f} % of the frame rate a dedicated "
              f"device reaches); frames sent per run {r['served_frames_per_run']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
