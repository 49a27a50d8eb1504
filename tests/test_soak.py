"""Soak: thousands of frames through the whole ``idc-edge run`` pipeline, resident memory flat.

The command runs as a real subprocess (reader, inference and drawing threads, overlay, MJPG video
writer, fsync'd JSON lines); its resident set size is sampled from outside together with the
number of lines already on disk, so memory is compared at known points of the run. Frames are
small (160×120) to keep the run at about 10–20 s on two busy cores.
"""
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge.record import read_records
from test_faults import jpeg_starts

psutil = pytest.importorskip("psutil", reason="the soak test measures memory with psutil (the [test] extra)")

N_FRAMES = 5000
CORRUPT_EVERY = 97           # one zeroed frame in 97: the skip path runs ~50 times too
GROWTH_LIMIT_MB = 4.0        # measured here: < 0.5 MB from frame 1000 to 5000 (a 1 KB/frame leak is 4 MB)


def soak_video(path, n=N_FRAMES, corrupt_every=CORRUPT_EVERY):
    tile = frame_with_blob(shape=(120, 160), box=(30, 20, 130, 100))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 120))
    for i in range(n):
        writer.write(np.roll(tile, 3 * i % 160, axis=1))
    writer.release()
    data = bytearray(path.read_bytes())
    starts = jpeg_starts(bytes(data)) + [len(data)]
    corrupt = list(range(corrupt_every // 2, n - 1, corrupt_every))
    for k in corrupt:
        data[starts[k]:starts[k + 1] - 8] = bytes(starts[k + 1] - 8 - starts[k])
    path.write_bytes(bytes(data))
    return corrupt


def run_sampling_memory(args, record, stderr_path, timeout=600):
    """Run ``idc-edge`` and sample (lines on disk, RSS in MB) every 0.1 s until it exits."""
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "idc_edge", *map(str, args)], stderr=err)
        ps = psutil.Process(proc.pid)
        samples = []
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                rss = ps.memory_info().rss / 2**20
                lines = record.read_bytes().count(b"\n") if record.exists() else 0
            except (psutil.Error, OSError):
                break
            samples.append((lines, rss))
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            pytest.fail(f"the soak run did not finish in {timeout} s")
    return proc.wait(), samples, stderr_path.read_text()


def growth_mb(samples, total, warm_up=1000):
    """Largest RSS in the last fifth of the run minus the largest RSS of frames warm_up..warm_up+1000."""
    early = [rss for n, rss in samples if warm_up <= n < warm_up + 1000]
    late = [rss for n, rss in samples if n >= total * 4 // 5]
    assert len(early) >= 2 and len(late) >= 2, f"too few memory samples: {len(samples)}"
    return max(late) - max(early)


def test_5000_frames_through_the_whole_pipeline_keep_memory_flat(tiny_int8, tmp_path):
    video, record, out = tmp_path / "stage.avi", tmp_path / "results.jsonl", tmp_path / "overlay.avi"
    corrupt = soak_video(video)
    rc, samples, stderr = run_sampling_memory(
        ["run", "--source", video, "--model", tiny_int8, "--record", record, "--save-video", out, "--quiet"],
        record, tmp_path / "stderr.txt")
    assert rc == 0, stderr[-2000:]
    indices = [r["index"] for r in read_records(record)]
    assert indices == [i for i in range(N_FRAMES) if i not in set(corrupt)]
    assert f"{len(corrupt)} unusable frame(s) skipped" in stderr and "Traceback" not in stderr
    growth = growth_mb(samples, len(indices))
    print(f"soak: {len(indices)} frames, {len(samples)} samples, RSS growth {growth:.2f} MB "
          f"(peak {max(r for _, r in samples):.1f} MB)")
    assert growth < GROWTH_LIMIT_MB, f"resident memory grew {growth:.1f} MB over the run: {samples[::20]}"


def test_a_live_camera_that_keeps_dropping_out_keeps_memory_flat(tiny_int8, tmp_path):
    """A capture device that ends every ~1000 frames and comes back (a video file opened as a
    camera): the newest-frame-wins reader, the drop-out and re-open path and the whole pipeline."""
    device, record = tmp_path / "camera", tmp_path / "results.jsonl"
    soak_video(tmp_path / "camera.avi", n=1000, corrupt_every=10**9)
    (tmp_path / "camera.avi").rename(device)  # without a suffix: --camera refuses a video file by its name
    total = 3000
    rc, samples, stderr = run_sampling_memory(
        ["run", "--camera", device, "--model", tiny_int8, "--record", record, "--max-frames", total, "--quiet"],
        record, tmp_path / "stderr.txt")
    assert rc == 0, stderr[-2000:]
    indices = [r["index"] for r in read_records(record)]
    assert len(indices) == total and indices == sorted(set(indices))
    assert "no frame (unplugged or failing?)" in stderr and "frames again after" in stderr
    growth = growth_mb(samples, total, warm_up=500)
    print(f"camera soak: RSS growth {growth:.2f} MB")
    assert growth < GROWTH_LIMIT_MB, f"resident memory grew {growth:.1f} MB over the run: {samples[::20]}"
