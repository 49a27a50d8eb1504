"""Batched patch classification with a TFLite model (LiteRT), no TensorFlow.

:class:`PatchClassifier` turns RGB uint8 patches ``[N, P, P, 3]`` into the probability of IDC
per patch. It validates the model against the contract (see :mod:`idc_edge.spec`) once, keeps
one interpreter per batch size it has used (powers of two up to 8, then multiples of 8 up to
``max_batch``, see :func:`padded_batch`) so nothing is re-allocated per frame, writes a short
last batch straight into that interpreter's fixed input buffer, feeds quantized inputs as raw
bytes where the model allows it, and always returns dequantized float probabilities.

A model whose sidecar has ``dense`` (see :mod:`idc_edge.spec`) can also score every window of
a whole image in one call, :meth:`PatchClassifier.predict_dense`: its interpreter input is
resized to ``[1, H, W, 3]`` once per image size and kept in a small cache.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from . import validate
from .backend import get_backend, make_interpreter
from .errors import ClosedError, ModelError, PatchError
from .fileio import as_path, name, read_bytes
from .dense import lattice_shape
from .macs import model_macs
from .modelcheck import probe_model
from .quant import dequantize, is_identity_uint8, quantize, uint8_to_int8_offset
from .spec import ModelSpec, read_spec

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = MODELS_DIR / "idc_int8.tflite"
_TFLITE_ID = b"TFL3"

#: Patches :meth:`PatchClassifier.predict` turns into the model's input at a time (rounded down to
#: whole batches): 2,048 RGB patches of 50 px are 15 MiB (60 MiB for a float model's input).
PREDICT_CHUNK_PATCHES = 2048

#: Image sizes whose dense interpreter is kept: a frame size needs up to four (the frame or its
#: tiles, the strips along its right and bottom edges, the corner window), so two frame sizes fit.
DENSE_CACHE_SIZE = 8

#: Largest step, in pixel levels, of a quantized input: coarser, the model sees fewer than 32 grey levels.
MAX_INPUT_STEP = 8.0
#: Least top of a quantized input's range, in pixel levels (half of 0–255).
MIN_INPUT_TOP = 127.5

#: How far past 0–1 a model's output may go and still be read as a probability (then clipped): float
#: rounding of a sigmoid or softmax, and a quantized output's zero point; a logit is far outside.
PROBABILITY_SLACK = 0.02


def resolve_model_path(model_path: str | os.PathLike | None) -> Path:
    """``model_path`` as a Path, or the model shipped in the package when None.

    Raises:
        ModelError: ``model_path`` is a folder (``.``, ``./``, ``/``): said here, where every command
            (``run``, ``bench``, ``info`` ...) starts, before a sidecar name is made from it (a path
            with no file name has none: ``Path('.').with_suffix`` raised ValueError).
    """
    if model_path is None:
        return DEFAULT_MODEL
    path = as_path(model_path, "model file")
    if os.path.isdir(path):
        raise ModelError(f"model file {name(path)} is a folder, not a regular file")
    return Path(path)


def read_model_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a TFLite model file, checked to be a TFLite flatbuffer.

    Raises:
        ModelError: the file is missing, empty, or not a TFLite model.
    """
    path = as_path(path, "model file")
    if not os.path.lexists(path):
        raise ModelError(f"model file {name(path)} does not exist; pass the path of a .tflite file as model_path "
                         "or omit it to use the shipped model")
    data = read_bytes(path, "model file", ModelError)
    if len(data) == 0:
        raise ModelError(f"model file {name(path)} is empty; re-copy or re-convert it")
    if len(data) < 16 or data[4:8] != _TFLITE_ID:
        raise ModelError(f"model file {name(path)} is not a TFLite model (no 'TFL3' identifier); "
                         "convert it with `python -m convert` or pass a .tflite file")
    return data


def padded_batch(n: int, max_batch: int) -> int:
    """The interpreter batch size that takes ``n`` (1 <= n <= max_batch) patches with least padding.

    Sizes are powers of two up to 8, then multiples of 8: per-patch cost is flat from batch 8 on,
    so a frame of 108 tissue patches runs as 64 + 48 (4 padded) rather than 64 + 64 (20 padded),
    with at most 11 interpreters for ``max_batch`` 64.
    """
    if n <= 8:
        size = 1 << (n - 1).bit_length()
    else:
        size = -(-n // 8) * 8
    return min(size, max_batch)


@dataclass(frozen=True)
class TensorFormat:
    """dtype and affine quantization (``real = scale * (q - zero_point)``) of a model tensor."""

    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.dtype in (np.dtype(np.int8), np.dtype(np.uint8))


def _tensor_format(detail: dict) -> TensorFormat:
    scale, zp = detail.get("quantization", (0.0, 0))
    return TensorFormat(np.dtype(detail["dtype"]), float(scale), int(zp))


class PatchClassifier:
    """Probability of IDC for batches of patches.

    Args:
        model_path: a ``.tflite`` file with its sidecar ``.json``; None for the shipped model.
        num_threads: interpreter threads (>= 1).
        max_batch: largest batch per interpreter call; larger inputs are chunked. A power of two.
        spec: the model's sidecar contents, for a model whose sidecar is not written yet (for
            example while training chooses its threshold); None reads ``<name>.json``.

    Raises:
        ModelError: the model or its sidecar breaks the contract.
        OptionError: an option is out of range.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, *, num_threads: int = 1, max_batch: int = 64,
                 spec: ModelSpec | None = None):
        num_threads = validate.threads("num_threads", num_threads)
        max_batch = validate.power_of_two("max_batch", max_batch)
        self.model_path = resolve_model_path(model_path)
        self._content = read_model_bytes(self.model_path)
        self.spec: ModelSpec = read_spec(self.model_path) if spec is None else spec
        if self.spec.model_sha256 and hashlib.sha256(self._content).hexdigest() != self.spec.model_sha256:
            raise ModelError(f"model file {str(self.model_path)!r} does not match the SHA-256 in its sidecar: the file "
                             "is damaged or the sidecar belongs to another model; copy both files again")
        self.backend = get_backend()
        self.num_threads = num_threads
        self.max_batch = max_batch
        self._slots: dict[int, tuple] = {}
        # an interpreter is not thread-safe (concurrent invoke() raises or mixes up outputs), and
        # the slots are shared: one caller at a time runs the model
        self._lock = threading.RLock()
        self._closed = False
        self._dense_slots: OrderedDict[tuple[int, int], tuple] = OrderedDict()
        self._macs: dict[Optional[tuple[int, int]], int] = {}
        # a well-formed but malformed model can crash the interpreter in C++: try it in a child first
        probe = probe_model(self._content, f"model file {str(self.model_path)!r}",
                            self.backend.interpreter_class.__module__, self.backend.name, self.backend.version,
                            batches=(1, max_batch), patch_px=self.spec.patch_size_px)
        interp, inp, out = self._slot(1)
        self.input_format = _tensor_format(inp)
        self.output_format = _tensor_format(out)
        self._check_contract(inp, out)
        probe.raise_for_error(f"model file {str(self.model_path)!r}")
        if self.spec.dense is not None:
            self._check_dense_stride()

    # -- model checks --------------------------------------------------------------------
    def _check_contract(self, inp: dict, out: dict) -> None:
        p = self.spec.patch_size_px
        shape = tuple(int(s) for s in inp["shape"])
        where = f"model {str(self.model_path)!r}"
        if len(shape) != 4 or shape[1:] != (p, p, 3):
            raise ModelError(f"{where} takes input of shape {list(shape)}, expected [N, {p}, {p}, 3] "
                             f"(RGB patches of patch_size_px={p} from the sidecar)")
        if self.input_format.dtype not in (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.float32)):
            raise ModelError(f"{where} takes {self.input_format.dtype} input; the contract allows uint8, int8 or float32")
        if self.input_format.quantized and not self.input_format.scale > 0:
            raise ModelError(f"{where} has a {self.input_format.dtype} input without quantization parameters")
        if self.input_format.quantized:
            self._check_input_range(where)
        oshape = tuple(int(s) for s in out["shape"])
        if not (len(oshape) in (2, 4) and oshape[1:-1] in ((), (1, 1)) and oshape[-1] in (1, 2)):
            raise ModelError(f"{where} gives output of shape {list(oshape)}, expected [N, 1] (sigmoid) "
                             "or [N, 2] (softmax, index 1 = IDC), or [N, 1, 1, 1|2] for a fully convolutional model")
        if self.output_format.dtype not in (np.dtype(np.uint8), np.dtype(np.int8), np.dtype(np.float32)):
            raise ModelError(f"{where} gives {self.output_format.dtype} output; expected float32, uint8 or int8")
        if self.output_format.quantized:
            self._check_output_range(where)

    def _check_input_range(self, where: str) -> None:
        """A quantized input takes raw pixel values (the contract: normalisation is inside the model), so
        its values ``scale * (q - zero_point)`` over the dtype's range must start at 0 and reach at least
        :data:`MIN_INPUT_TOP` (a converter calibrates the top on its representative patches, which need not
        reach white), in steps of at most :data:`MAX_INPUT_STEP` levels. An input scale of 1e30 turned every
        pixel into the zero point (every patch scored alike), one of 1/255 clipped every pixel above 1 (a
        model expecting 0–1 input)."""
        f = self.input_format
        info = np.iinfo(f.dtype)
        low, high = f.scale * (info.min - f.zero_point), f.scale * (info.max - f.zero_point)
        if not (np.isfinite(f.scale) and low <= 0.5 and high >= MIN_INPUT_TOP and f.scale <= MAX_INPUT_STEP):
            raise ModelError(f"{where} has {f.dtype} input holding {low:.4g} to {high:.4g} in steps of {f.scale:.4g}, "
                             "not pixel values 0-255: a quantized input takes raw pixels (normalisation inside the "
                             "model); re-convert it so")

    def _check_output_range(self, where: str) -> None:
        """A quantized output must be able to hold probabilities and nothing far beyond them: its
        values ``scale * (q - zero_point)`` over the dtype's range must run from 0 to 1 (give or take
        :data:`PROBABILITY_SLACK`). A logit output's range is far wider (its scores were passed on as
        probabilities of 120); a tiny scale's far narrower (every patch scored near 0, "no IDC")."""
        f = self.output_format
        info = np.iinfo(f.dtype)
        if not (np.isfinite(f.scale) and f.scale > 0):
            raise ModelError(f"{where} has output of type {f.dtype} with quantization scale {f.scale:g}, which gives every "
                             "patch the same score; the file is damaged or badly converted: re-convert it")
        low, high = f.scale * (info.min - f.zero_point), f.scale * (info.max - f.zero_point)
        if not (-PROBABILITY_SLACK <= low <= PROBABILITY_SLACK and 1 - PROBABILITY_SLACK <= high <= 1 + PROBABILITY_SLACK):
            raise ModelError(f"{where} has output of type {f.dtype} ranging {low:.4g} to {high:.4g}, not a probability "
                             "from 0 to 1: its last layer needs a sigmoid (or a softmax over no IDC, IDC); "
                             "re-export it with one")

    def _slot(self, batch: int) -> tuple:
        """Interpreter allocated for exactly ``batch`` patches, created once and kept."""
        slot = self._slots.get(batch)
        if slot is None:
            self._check_open()
            try:
                interp = self._new_interpreter(batch)
            except ModelError:
                raise
            except (ValueError, RuntimeError) as e:
                raise ModelError(f"model {str(self.model_path)!r} cannot be loaded by {self.backend.name}: "
                                 f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
            slot = (interp, interp.get_input_details()[0], interp.get_output_details()[0])
            self._slots[batch] = slot
        return slot

    def _new_interpreter(self, batch: int, size_hw: Optional[tuple[int, int]] = None):
        interp = make_interpreter(self._content, num_threads=self.num_threads, batch_size=batch,
                                  input_hw=size_hw, interpreter_class=self.backend.interpreter_class,
                                  patch_px=self.spec.patch_size_px)
        inp, out = interp.get_input_details(), interp.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise ModelError(f"model {str(self.model_path)!r} has {len(inp)} inputs and {len(out)} outputs; "
                             "expected one of each")
        return interp

    # -- inference -----------------------------------------------------------------------
    def _prepare(self, patches: np.ndarray) -> np.ndarray:
        """RGB uint8 patches → the model's input tensor (channel order, dtype, quantization)."""
        if self.spec.channel_order == "BGR":
            patches = patches[..., ::-1]
        f = self.input_format
        if f.dtype == np.float32:
            return patches.astype(np.float32)
        if is_identity_uint8(f.scale, f.zero_point, f.dtype):
            return np.ascontiguousarray(patches)
        if f.dtype == np.int8 and uint8_to_int8_offset(f.scale, f.zero_point):
            return (patches ^ np.uint8(0x80)).view(np.int8)
        return quantize(patches.astype(np.float32), f.scale, f.zero_point, f.dtype)

    def _postprocess(self, raw: np.ndarray) -> np.ndarray:
        """Model output ``[..., K]`` → float32 probability of IDC, ``[...]`` (index 1 of a softmax)."""
        f = self.output_format
        values = dequantize(raw, f.scale, f.zero_point) if f.quantized else raw.astype(np.float32)
        probs = values[..., 1] if values.shape[-1] == 2 else values[..., 0]
        return self._as_probabilities(probs)

    def _as_probabilities(self, scores: np.ndarray) -> np.ndarray:
        """``scores`` clipped to 0–1, after checking they are probabilities: a model without a final
        sigmoid gave 120 as the "probability" of IDC, and NaN weights gave NaN, both passed on silently.

        Raises:
            ModelError: a score is NaN or beyond 0–1 by more than :data:`PROBABILITY_SLACK`.
        """
        bad = ~((scores >= -PROBABILITY_SLACK) & (scores <= 1 + PROBABILITY_SLACK))  # NaN is bad too
        if bad.any():
            value = float(scores[bad].flat[0])
            raise ModelError(f"model {str(self.model_path)!r} gave {value:.4g} as a patch's probability of IDC, "
                             "not a number from 0 to 1: its last layer needs a sigmoid (or a softmax over no IDC, "
                             "IDC) and finite weights; re-export it")
        return np.clip(scores, 0.0, 1.0, out=scores if scores.dtype == np.float32 else None)

    def _run(self, batch: np.ndarray, size: Optional[int] = None) -> np.ndarray:
        """Model output for ``batch`` run in the interpreter of ``size`` >= len(batch) patches; rows
        past len(batch) are zero padding (their outputs are returned too and must be dropped)."""
        n = batch.shape[0]
        interp, inp, out = self._slot(size or n)
        if size is None or size == n:
            interp.set_tensor(inp["index"], batch)
        else:
            buffer = interp.tensor(inp["index"])()  # the interpreter's own input; no allocation
            buffer[:n] = batch
            buffer[n:] = 0
            del buffer  # no reference to the interpreter's memory may live across invoke()
        self._invoke(interp)
        return self._postprocess(interp.get_tensor(out["index"])).reshape(-1)

    def _invoke(self, interp) -> None:
        try:
            interp.invoke()
        except (RuntimeError, ValueError) as e:  # LiteRT's own errors never escape raw
            text = str(e).strip()
            raise ModelError(f"model {str(self.model_path)!r} failed in {self.backend.name}: "
                             f"{text.splitlines()[0][:200] if text else type(e).__name__}") from None

    def predict(self, patches: np.ndarray) -> np.ndarray:
        """Probability of IDC (float32 in [0, 1]) for each patch.

        Args:
            patches: uint8 ``[N, P, P, 3]`` in **RGB** order, P = ``spec.patch_size_px``.

        Returns:
            float32 ``[N]``.

        Raises:
            PatchError: ``patches`` has the wrong type, shape or dtype.
            ClosedError: :meth:`close` was called.
        """
        self._check_open()
        p = self.spec.patch_size_px
        if not isinstance(patches, np.ndarray) or patches.dtype != np.uint8 or patches.ndim != 4 \
                or patches.shape[1:] != (p, p, 3):
            got = f"{patches.dtype} {list(patches.shape)}" if isinstance(patches, np.ndarray) else type(patches).__name__
            raise PatchError(f"patches must be uint8 RGB [N, {p}, {p}, 3], got {got}")
        n = patches.shape[0]
        probs = np.empty(n, np.float32)
        if n == 0:
            return probs
        # a chunk at a time: the model's input for all N at once is a copy of them (4x for a float
        # model), so 200,000 patches took 1.5 GB and a view larger than memory (np.broadcast_to) was
        # numpy's bare MemoryError; chunks are whole batches, so every patch is batched as before
        chunk = self.max_batch * max(1, PREDICT_CHUNK_PATCHES // self.max_batch)
        for start in range(0, n, chunk):
            x = self._prepare(patches[start:start + chunk])
            with self._lock:
                self._predict_prepared(x, probs[start:start + chunk])
        return probs

    def _predict_prepared(self, x: np.ndarray, probs: np.ndarray) -> None:
        n = x.shape[0]
        start = 0
        while start < n:
            remaining = n - start
            if remaining >= self.max_batch:
                size = self.max_batch
                probs[start:start + size] = self._run(x[start:start + size])
            else:
                probs[start:] = self._run(x[start:], padded_batch(remaining, self.max_batch))[:remaining]
                size = remaining
            start += size

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"this PatchClassifier of {str(self.model_path)!r} is closed; make a new one")
    # -- dense inference (fully convolutional models) -------------------------------------------
    @property
    def dense_stride(self) -> Optional[int]:
        """Model pixels between windows of the dense output, or None for a patch-only model."""
        return None if self.spec.dense is None else self.spec.dense.output_stride_px

    def dense_output_shape(self, height: int, width: int) -> tuple[int, int]:
        """(rows, cols) of windows the dense pass gives for an image of ``height × width`` pixels."""
        p, s = self.spec.patch_size_px, self.dense_stride
        if s is None:
            raise ModelError(f"model {str(self.model_path)!r} has no dense pass (its sidecar has no \"dense\")")
        return lattice_shape(height, width, p, s)

    def macs(self, input_hw: Optional[tuple[int, int]] = None) -> int:
        """Multiply-accumulates of one patch (``input_hw`` None) or of one dense pass over an image of
        ``input_hw`` = (height, width) pixels, counted from the model's ops once per size."""
        with self._lock:
            if input_hw not in self._macs:
                if len(self._macs) > 4 * DENSE_CACHE_SIZE:
                    self._macs.clear()
                p = self.spec.patch_size_px  # a patch is P×P even where the model leaves its size open
                self._macs[input_hw] = model_macs(self._content, input_hw or (p, p))
            return self._macs[input_hw]

    def _check_dense_stride(self) -> None:
        """Run the dense model once on a strip one window high and ``P + S·P`` wide: its output width
        is ``P + 1`` only when the model's output stride is the sidecar's S (any other stride up to
        P gives another width), so a sidecar that does not match its model is refused at load."""
        p, s = self.spec.patch_size_px, self.dense_stride
        with self._lock:
            self._dense_slot(p, p + s * p)
            self._dense_slots.pop((p, p + s * p))

    def _dense_slot(self, height: int, width: int) -> tuple:
        """Interpreter allocated for one ``[1, height, width, 3]`` image; the newest few are kept."""
        key = (height, width)
        slot = self._dense_slots.get(key)
        if slot is not None:
            self._dense_slots.move_to_end(key)
            return slot
        where = f"model {str(self.model_path)!r}"
        try:
            interp = self._new_interpreter(1, key)
        except ModelError:
            raise
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{where} cannot run on a {width}×{height} image although its sidecar has \"dense\": "
                             f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None
        out = interp.get_output_details()[0]
        rows, cols = self.dense_output_shape(height, width)
        got = [int(v) for v in out["shape"]]
        if len(got) != 4 or got[:3] != [1, rows, cols] or got[3] not in (1, 2):
            raise ModelError(f"{where} gives output {got} for a {width}×{height} image, expected [1, {rows}, {cols}, 1|2] "
                             f"from its sidecar's dense.output_stride_px={self.dense_stride}; the sidecar does not "
                             "match the model")
        slot = (interp, interp.get_input_details()[0], out)
        self._dense_slots[key] = slot
        while len(self._dense_slots) > DENSE_CACHE_SIZE:
            self._dense_slots.popitem(last=False)
        return slot

    def predict_dense(self, image: np.ndarray) -> np.ndarray:
        """Probability of IDC of every window of ``image`` in one interpreter call.

        Args:
            image: uint8 ``[H, W, 3]`` in **RGB** order, H and W >= ``spec.patch_size_px``.

        Returns:
            float32 ``[(H-P)//S + 1, (W-P)//S + 1]``: entry ``[i, j]`` is the window whose top-left
            corner is at (x = j·S, y = i·S) pixels, S = :attr:`dense_stride`; it equals
            :meth:`predict` of that window within one output quantization step.

        Raises:
            ModelError: the model has no dense pass, or its output does not fit its sidecar.
            PatchError: ``image`` has the wrong shape or dtype, or is smaller than one patch.
            ClosedError: :meth:`close` was called.
        """
        self._check_open()
        p = self.spec.patch_size_px
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 \
                or image.shape[0] < p or image.shape[1] < p:
            got = f"{image.dtype} {list(image.shape)}" if isinstance(image, np.ndarray) else type(image).__name__
            raise PatchError(f"image must be uint8 RGB [H, W, 3] with H, W >= {p}, got {got}")
        h, w = image.shape[:2]
        x = self._prepare(image[None])
        with self._lock:
            interp, inp, out = self._dense_slot(h, w)
            interp.set_tensor(inp["index"], x)
            self._invoke(interp)
            return self._postprocess(interp.get_tensor(out["index"]))[0]

    def close(self) -> None:
        """Release the interpreters; safe to call twice. Later calls raise :class:`ClosedError`."""
        with self._lock:
            self._closed = True
            self._slots.clear()
            self._dense_slots.clear()

    def __enter__(self) -> "PatchClassifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
