"""`python -m train --strategy mirrored` on two logical CPU devices (how CI exercises tf.distribute
without GPUs), streaming a tiny synthetic data set in the data set's layout from disk."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("tensorflow")

ROOT = Path(__file__).resolve().parents[1]


def _synthetic_dataset(root: Path) -> None:
    """4 patients on a 4×4 grid each; IDC cells darker and more purple (synthetic pixels)."""
    rng = np.random.default_rng(0)
    for patient in ("101", "102", "103", "104"):
        for cx in range(4):
            for cy in range(4):
                label = int(cx >= 2)
                base = np.array([150, 60, 120] if label else [200, 160, 220], np.float64)  # BGR
                img = np.clip(base + rng.normal(0, 20, (50, 50, 3)), 0, 255).astype(np.uint8)
                d = root / patient / str(label)
                d.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(d / f"{patient}_idx5_x{cx * 50}_y{cy * 50}_class{label}.png"), img)


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus_trains_and_exports(tmp_path):
    data, out = tmp_path / "data", tmp_path / "run"
    _synthetic_dataset(data)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "train", "--data", str(data), "--out", str(out), "--arch", "dense25",
         "--strategy", "mirrored", "--logical-cpus", "2", "--epochs", "1", "--batch-size", "16",
         "--val-patients", "104", "--ema", "0", "--no-latency", "--augment", "classic"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = json.loads((out / "model_card.json").read_text())
    assert card["replicas"] == 2
    assert card["config"]["strategy"] == "mirrored"
    sidecar = json.loads((out / "model_int8.json").read_text())
    assert sidecar["dense"] == {"output_stride_px": 25}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
def test_multiworker_strategy_trains_two_local_workers_in_step_from_tf_config(tmp_path):
    # Two processes on this machine stand in for two machines; each reads its role from TF_CONFIG.
    data, out = tmp_path / "data", tmp_path / "run"
    _synthetic_dataset(data)
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    procs, logs = [], [tmp_path / f"worker_{i}.log" for i in range(2)]  # files: a full pipe would block a worker
    handles = [log.open("w") for log in logs]
    for index in range(2):
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   TF_CONFIG=json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "train", "--data", str(data), "--out", str(out), "--arch", "dense25",
             "--strategy", "multiworker", "--epochs", "1", "--batch-size", "16", "--val-patients", "104",
             "--no-latency", "--augment", "classic", "--teacher", "none"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=handles[index]))
    try:
        # a worker that fails leaves the other waiting for it forever: stop both at the first failure
        deadline = time.monotonic() + 600
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log, handle in zip(procs, logs, handles):
        p.wait()
        handle.close()
        assert p.returncode == 0, log.read_text()[-3000:]
    chief = json.loads((out / "model_card.json").read_text())
    other = json.loads((out / "worker_1" / "model_card.json").read_text())
    assert chief["replicas"] == other["replicas"] == 2
    # synchronous data parallelism: both workers end with the same weights, so the same scores
    assert chief["float"]["metrics"]["roc_auc"] == other["float"]["metrics"]["roc_auc"]
    assert json.loads((out / "model_int8.json").read_text())["dense"] == {"output_stride_px": 25}


def test_bad_strategy_and_logical_cpus_are_one_line_errors(tmp_path):
    for extra, what in ((["--strategy", "tpu"], "--strategy"), (["--logical-cpus", "0"], "--logical-cpus")):
        proc = subprocess.run([sys.executable, "-m", "train", "--out", str(tmp_path / "x"), *extra],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and what in proc.stderr and "Traceback" not in proc.stderr
