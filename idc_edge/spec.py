"""The model contract: a ``.tflite`` file plus a sidecar ``<name>.json`` describing it.

The sidecar says at which scale and in which channel order the model sees tissue and where
its decision threshold lies, so the runtime needs nothing else to use the model correctly.
Keys (``format_version`` 1):

- ``patch_size_px`` (int): side of the square input patch in pixels, 50 for the Kaggle set.
- ``um_per_px`` (float): microns per pixel of the training data, 4.0 for the Kaggle set.
- ``channel_order``: ``"RGB"`` or ``"BGR"``, the order the model's input expects.
- ``threshold`` (float in [0, 1]): a patch is IDC when its probability is >= threshold.
- ``class_names``: two names, index 1 is IDC.
- ``float_model`` (optional): file name, next to this one, of the float32 model with the same
  weights, for measuring the quantization drop.
- ``provenance`` (dict): how it was made: data, split, metrics, command, date.
- ``model_sha256`` (optional): SHA-256 of the ``.tflite`` file, written by :func:`write_spec`;
  a model whose bytes no longer match is refused (a damaged copy can load and give wrong
  scores without any other sign).
- ``dense`` (optional): ``{"output_stride_px": S}`` says the model is fully convolutional with
  valid padding: its input may be resized to ``[1, H, W, 3]`` (H, W >= ``patch_size_px``) and
  its output is then ``[1, (H-P)//S + 1, (W-P)//S + 1, K]``, entry ``[0, i, j]`` being the score
  of the P×P window whose top-left corner is at (x = j·S, y = i·S) model pixels. Without it the
  model runs on patches only.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ModelError

FORMAT_VERSION = 1
CHANNEL_ORDERS = ("RGB", "BGR")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class DenseSpec:
    """How a fully convolutional model's dense output maps to windows.

    Attributes:
        output_stride_px: model pixels between neighbouring windows of the dense output (S).
    """

    output_stride_px: int

    def __post_init__(self):
        s = self.output_stride_px
        if isinstance(s, bool) or not isinstance(s, int) or s < 1:
            raise ModelError(f"sidecar: dense.output_stride_px must be a whole number of model pixels >= 1, got {s!r}")

    @classmethod
    def from_json(cls, data: Any, where: str = "sidecar") -> "DenseSpec":
        if not isinstance(data, dict) or "output_stride_px" not in data:
            raise ModelError(f"{where}: dense must be an object {{\"output_stride_px\": S}} (S in model pixels), "
                             f"got {data!r}; remove it for a model that runs on patches only")
        unknown = sorted(set(data) - {"output_stride_px"})
        if unknown:
            raise ModelError(f"{where}: dense has unknown key(s) {', '.join(unknown)}; only output_stride_px is known")
        try:
            return cls(data["output_stride_px"])
        except ModelError as e:
            raise ModelError(f"{where}: {str(e).removeprefix('sidecar: ')}") from None


@dataclass(frozen=True)
class ModelSpec:
    """What a model's sidecar says (see the module docstring for the units)."""

    patch_size_px: int = 50
    um_per_px: float = 4.0
    channel_order: str = "RGB"
    threshold: float = 0.5
    class_names: tuple[str, str] = ("no IDC", "IDC")
    float_model: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    model_sha256: str | None = None
    dense: DenseSpec | None = None

    def __post_init__(self):
        if not isinstance(self.patch_size_px, int) or self.patch_size_px < 8:
            raise ModelError(f"sidecar: patch_size_px must be an integer >= 8, got {self.patch_size_px!r}")
        if not isinstance(self.um_per_px, (int, float)) or not self.um_per_px > 0 or not math.isfinite(self.um_per_px):
            raise ModelError(f"sidecar: um_per_px must be a positive number of microns per pixel, got {self.um_per_px!r}")
        if self.channel_order not in CHANNEL_ORDERS:
            raise ModelError(f"sidecar: channel_order must be 'RGB' or 'BGR', got {self.channel_order!r}")
        if not isinstance(self.threshold, (int, float)) or not 0.0 <= self.threshold <= 1.0:
            raise ModelError(f"sidecar: threshold must be a probability between 0 and 1, got {self.threshold!r}")
        if len(self.class_names) != 2 or not all(isinstance(c, str) for c in self.class_names):
            raise ModelError(f"sidecar: class_names must be two names (index 1 = IDC), got {self.class_names!r}")
        if self.model_sha256 is not None:
            if not isinstance(self.model_sha256, str) or not _SHA256.fullmatch(self.model_sha256):
                raise ModelError(f"sidecar: model_sha256 must be the model's SHA-256 as 64 hexadecimal digits, "
                                 f"got {self.model_sha256!r:.80}")
            object.__setattr__(self, "model_sha256", self.model_sha256.lower())  # hex digits in either case
        if isinstance(self.dense, dict):  # as written in JSON: {"output_stride_px": S}
            object.__setattr__(self, "dense", DenseSpec.from_json(self.dense))
        if self.dense is not None:
            if not isinstance(self.dense, DenseSpec):
                raise ModelError(f"sidecar: dense must be {{\"output_stride_px\": S}}, got {self.dense!r}")
            if self.dense.output_stride_px > self.patch_size_px:
                raise ModelError(f"sidecar: dense.output_stride_px {self.dense.output_stride_px} is larger than the "
                                 f"{self.patch_size_px} px patch (windows would leave gaps)")

    def with_threshold(self, threshold: float) -> "ModelSpec":
        return replace(self, threshold=threshold)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        if self.dense is None:
            del d["dense"]  # a patch-only model's sidecar stays as it always was
        return {"format_version": FORMAT_VERSION, **d}

    @classmethod
    def from_json(cls, data: Any, where: str = "sidecar") -> "ModelSpec":
        if not isinstance(data, dict):
            raise ModelError(f"{where}: expected a JSON object, got {type(data).__name__}")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ModelError(f"{where}: format_version {version!r} is not supported (this idc-edge reads {FORMAT_VERSION})")
        required = ("patch_size_px", "um_per_px", "channel_order", "threshold", "class_names")
        missing = [k for k in required if k not in data]
        if missing:
            raise ModelError(f"{where}: missing key(s) {', '.join(missing)}")
        try:
            return cls(
                patch_size_px=data["patch_size_px"], um_per_px=float(data["um_per_px"]),
                channel_order=data["channel_order"], threshold=float(data["threshold"]),
                class_names=tuple(data["class_names"]), float_model=data.get("float_model"),
                provenance=dict(data.get("provenance") or {}), model_sha256=data.get("model_sha256"),
                dense=None if data.get("dense") is None else DenseSpec.from_json(data["dense"], where),
            )
        except (TypeError, ValueError) as e:
            raise ModelError(f"{where}: {e}") from None


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``model.tflite`` → ``model.json``."""
    return Path(model_path).with_suffix(".json")


def read_spec(model_path: str | os.PathLike) -> ModelSpec:
    """Read and validate the sidecar of ``model_path``.

    Raises:
        ModelError: the sidecar is missing, not JSON, or its values are invalid.
    """
    path = sidecar_path(model_path)
    if not path.is_file():
        raise ModelError(f"model sidecar {str(path)!r} is missing: every model needs <name>.json next to "
                         "<name>.tflite (patch_size_px, um_per_px, channel_order, threshold, class_names)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelError(f"model sidecar {str(path)!r} is not valid JSON ({e}); fix or regenerate it") from None
    return ModelSpec.from_json(data, where=f"model sidecar {str(path)!r}")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_spec(model_path: str | os.PathLike, spec: ModelSpec) -> Path:
    """Write ``spec`` as the sidecar of ``model_path``; returns the sidecar's path.

    When the model file exists, its SHA-256 is recorded in ``model_sha256`` so a damaged copy
    is refused at load.
    """
    if Path(model_path).is_file():
        spec = replace(spec, model_sha256=file_sha256(model_path))
    path = sidecar_path(model_path)
    path.write_text(json.dumps(spec.to_json(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path
