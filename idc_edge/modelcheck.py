"""Proving a model file cannot crash the process before the interpreter loads it here.

The TFLite interpreter checks a model's flatbuffer *structure* when it loads it, but not its
*meaning*: a file that is well-formed yet carries, say, a NaN or negative quantization scale
or an absurd tensor dimension passes that check and then crashes the interpreter in C++
(SIGSEGV) during ``allocate_tensors()`` or ``invoke()``, taking the whole process down with no
message. A byte flipped on an SD card or a file copied half-way can do this.

:func:`probe_model` therefore loads the model once in a short-lived child process (the same
Python and backend, fed the exact bytes the caller will load, so the file cannot change in
between): allocate, resize to each batch size the caller will use and run one inference on
zeros. If the child dies, the caller gets a :class:`~idc_edge.errors.ModelError` instead of a
crash. The child imports only numpy and the interpreter (about 0.15 s here); a verdict of
"loads and runs" is cached per model content hash and backend version, so each model file pays
once per device. The cache lives in ``$IDC_EDGE_CACHE_DIR`` (set it empty to switch caching
off), else ``$XDG_CACHE_HOME/idc-edge`` or ``~/.cache/idc-edge``; an unwritable cache is
simply not used.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from .errors import ModelError
from .fileio import is_regular_file

log = logging.getLogger(__name__)

_BACKEND_FILE = str(Path(__file__).resolve().with_name("backend.py"))

#: Seconds the child may take to load and run the model once before it is declared hung.
PROBE_TIMEOUT_S = 120.0

# Runs in the child: argv = [interpreter module, comma-separated batch sizes, JSON list of extra
# import folders, path of idc_edge/backend.py, patch size in pixels or ""]; model bytes on stdin;
# prints one JSON line.
# Exceptions are reported, not raised: only a crash kills it. Interpreters are made by the
# library's own factory (backend.make_interpreter, loaded from its file alone, no package import),
# one per batch size, exactly as the classifier will make them. The child runs isolated (``python -I``: no working directory or
# script folder on sys.path, no PYTHON* variables, no user site), so a json.py or numpy.py in the
# working directory is never imported; the parent's own import folders (minus the working
# directory) are appended after the standard library and site-packages.
_PROBE_SOURCE = r"""
import importlib, importlib.util, json, sys
sys.path.extend(p for p in json.loads(sys.argv[3]) if p not in sys.path)
stage = "import"
try:
    import numpy as np
    Interpreter = importlib.import_module(sys.argv[1]).Interpreter
    spec = importlib.util.spec_from_file_location("idc_edge_backend_probe", sys.argv[4])
    backend = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    data = sys.stdin.buffer.read()
    stage = "load"
    for batch in [int(b) for b in sys.argv[2].split(",")]:
        interp = backend.make_interpreter(data, num_threads=1, batch_size=batch, interpreter_class=Interpreter,
                                          patch_px=int(sys.argv[5]) if sys.argv[5] else None)
        stage = "invoke"
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        interp.invoke()
        for d in interp.get_output_details():
            interp.get_tensor(d["index"])
        stage = "allocate"  # the next batch size: the model loaded once already
    print(json.dumps({"ok": True}))
except Exception as e:
    text = str(e).strip()
    print(json.dumps({"ok": False, "stage": stage,
                      "error": text.splitlines()[0] if text else type(e).__name__}))
"""


@dataclass(frozen=True)
class ProbeResult:
    """What the child process saw.

    Attributes:
        ok: the model loaded, allocated and ran one inference at every batch size.
        stage: where it failed (``load``, ``allocate``, ``invoke``), None when ok.
        error: the interpreter's own message (a Python exception, not a crash), None when ok.
        cached: the verdict came from the cache, no child was started.
    """

    ok: bool
    stage: Optional[str] = None
    error: Optional[str] = None
    cached: bool = False

    def raise_for_error(self, where: str) -> None:
        """Raise :class:`ModelError` naming ``where`` when the model failed (without crashing)."""
        if not self.ok:
            raise ModelError(f"{where} fails in the interpreter at {self.stage}: {self.error}; "
                             "the file is corrupt or was made for another runtime: re-copy or re-convert it")


def cache_dir() -> Optional[Path]:
    """Where verdicts are cached, or None when caching is off (``IDC_EDGE_CACHE_DIR=``, empty or blank).

    A relative ``IDC_EDGE_CACHE_DIR`` is taken from the folder the process started in; a relative
    ``XDG_CACHE_HOME`` is ignored (see :mod:`idc_edge.environment`)."""
    from .environment import env_path, xdg_dir

    env = os.environ.get("IDC_EDGE_CACHE_DIR")
    if env is not None and not env.strip():
        return None  # the documented way to switch caching off
    folder = env_path("IDC_EDGE_CACHE_DIR")
    if folder is not None:
        return folder / "modelcheck"
    return xdg_dir("XDG_CACHE_HOME", ".cache") / "idc-edge" / "modelcheck"


def _cache_key(content: bytes, backend_name: str, backend_version: str, batches: Sequence[int],
               patch_px: Optional[int] = None) -> str:
    digest = hashlib.sha256(content).hexdigest()
    tag = f"{backend_name}-{backend_version}-b{'_'.join(str(b) for b in batches)}"
    if patch_px is not None:
        tag += f"-p{int(patch_px)}"
    return f"{digest}-{''.join(c if c.isalnum() or c in '._-' else '_' for c in tag)}.ok"


def _cached_ok(key: str) -> bool:
    folder = cache_dir()
    # a cache path too long or unreadable only costs a probe, like a cache that cannot be written
    return folder is not None and is_regular_file(folder / key)


def _remember_ok(key: str) -> None:
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        os.close(fd)
        os.replace(tmp, folder / key)  # atomic: concurrent runs see it whole or not at all
    except OSError:
        pass  # a read-only or full cache only costs a probe next time


def _signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


def import_folders() -> list[str]:
    """This process's import folders that the isolated child may use: absolute, existing, and
    never the working directory (where a stray json.py would be imported instead of the library's)."""
    try:
        cwd = os.path.realpath(os.getcwd())
    except OSError:
        cwd = None
    out = []
    for p in sys.path:
        if not p or not os.path.isabs(p) or not os.path.isdir(p):
            continue
        if cwd is not None and os.path.realpath(p) == cwd:
            continue
        out.append(p)
    return out


def probe_model(content: bytes, where: str, interpreter_module: str, backend_name: str = "",
                backend_version: str = "", batches: Sequence[int] = (1,),
                timeout_s: float = PROBE_TIMEOUT_S, patch_px: Optional[int] = None) -> ProbeResult:
    """Load and run ``content`` once in a child process; raise if that crashes or hangs.

    Args:
        content: the model's bytes, exactly as the caller will hand them to the interpreter.
        where: how to name the model in messages, e.g. ``"model file 'x.tflite'"``.
        interpreter_module: module holding the ``Interpreter`` class, e.g. ``ai_edge_litert.interpreter``.
        backend_name, backend_version: part of the cache key (a new runtime is probed again).
        batches: batch sizes to allocate and run, in patches.
        timeout_s: seconds before the child is killed and the model declared hung.
        patch_px: input height and width, pixels, where the model leaves them open (as the caller
            will allocate it, see :func:`idc_edge.backend.make_interpreter`); None leaves them.

    Returns:
        :class:`ProbeResult`; ``ok`` False when the interpreter raised an ordinary error
        (the caller decides how to report it, usually after its own clearer checks).

    Raises:
        ModelError: the child crashed (e.g. SIGSEGV), was killed, or did not finish in time.

    When the check itself cannot run here (no usable Python executable, as in some frozen apps,
    or the interpreter module does not import in a fresh process) a warning is logged and the
    result is ``ok``: the caller loads the model directly, unprotected, rather than not at all.
    """
    batches = tuple(sorted({int(b) for b in batches}))
    key = _cache_key(content, backend_name or interpreter_module, backend_version, batches, patch_px)
    if _cached_ok(key):
        return ProbeResult(True, cached=True)
    if not sys.executable:
        return _unchecked(where, "no Python executable to run it")  # an embedded interpreter
    try:
        proc = subprocess.run([sys.executable, "-I", "-c", _PROBE_SOURCE, interpreter_module,
                               ",".join(map(str, batches)), json.dumps(import_folders()), _BACKEND_FILE,
                               "" if patch_px is None else str(int(patch_px))],
                              input=content, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ModelError(f"{where} did not finish loading in the interpreter within {timeout_s:g} s; "
                         "the file is corrupt or far too large for this device") from None
    except OSError as e:
        return _unchecked(where, f"starting {sys.executable!r} failed: {e.strerror}")
    if proc.returncode < 0:
        what = _signal_name(proc.returncode)
        hint = " (out of memory?)" if what == "SIGKILL" else ""
        raise ModelError(f"{where} crashes the {backend_name or 'TFLite'} interpreter ({what}{hint}) although it "
                         "looks like a TFLite file: it is corrupt or malformed; re-copy or re-convert it")
    try:
        verdict = json.loads(proc.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (IndexError, ValueError):  # e.g. a frozen app whose executable does not take -c
        last = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return _unchecked(where, f"the check process failed: {last[0][:200]}")
    if verdict.get("ok"):
        _remember_ok(key)
        return ProbeResult(True)
    if verdict.get("stage") == "import":
        return _unchecked(where, f"{interpreter_module} does not import in a fresh process: {verdict.get('error')}")
    return ProbeResult(False, verdict.get("stage"), verdict.get("error"))


def _unchecked(where: str, why: str) -> ProbeResult:
    """The check itself cannot run here (not the model's fault): say so and let the caller load it."""
    log.warning("%s is loaded without the crash check (%s); a malformed file could crash this process", where, why)
    return ProbeResult(True)
