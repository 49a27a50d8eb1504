"""The model contract: a ``.tflite`` file plus a sidecar ``<name>.json`` describing it.

The sidecar says at which scale and in which channel order the model sees tissue and where
its decision threshold lies, so the runtime needs nothing else to use the model correctly.
Keys (``format_version`` 1):

- ``patch_size_px`` (int): side of the square input patch in pixels, 50 for the Kaggle set.
- ``um_per_px`` (float): microns per pixel of the training data, 4.0 for the Kaggle set.
- ``channel_order``: ``"RGB"`` or ``"BGR"``, the order the model's input expects.
- ``threshold`` (float in [0, 1]): a patch is IDC when its probability is >= threshold.
- ``class_names``: two names, index 1 is IDC: it names IDC (the word ``IDC``, without ``no``,
  ``non``, ``not`` or ``negative``) and index 0 does not.
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
- ``context`` (optional): ``{"sigma_px": σ, "weight": w, "threshold": t}`` says how the runtime
  reads a window's score with its neighbours' (see :mod:`idc_edge.context`): σ the width of the
  neighbourhood in model pixels, w how much it counts against the window's own score, t the
  decision threshold of the combined score (chosen on validation patients like ``threshold``,
  which stays the threshold of a patch scored alone). Without it windows are decided alone.

Any other key, or a key given twice, is refused: a mistyped key would be ignored and a repeated
one would silently win.
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
from .fileio import name, read_bytes, short
from .jsonready import RepeatedKey, unique_keys
from .validate import did_you_mean, implausible_um_per_px

FORMAT_VERSION = 1
CHANNEL_ORDERS = ("RGB", "BGR")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
#: widest field context a sidecar may ask for, model pixels (800 µm at 4 µm/px): beyond it the
#: neighbourhood is no longer the window's surroundings, and its filter would grow without bound
MAX_CONTEXT_SIGMA_PX = 200.0
#: narrowest: below a third of a model pixel no window has a neighbour within 3σ at any stride (the
#: context does nothing), and a σ whose square underflows made the neighbour weights 0/0
MIN_CONTEXT_SIGMA_PX = 0.01
#: heaviest weight of the neighbourhood against the window (beyond it the window's own score is lost)
MAX_CONTEXT_WEIGHT = 100.0


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: words that make a class name the negative class ("no IDC", "non-IDC", "IDC negative")
_NEGATIONS = frozenset({"no", "non", "not", "without", "negative"})


def names_idc(class_name: str) -> bool:
    """True when a class name names IDC: it has the word ``IDC`` (any case, any separators) and no
    negation (:data:`_NEGATIONS`); "IDC", "IDC positive", "class1_IDC" do, "no IDC", "non-IDC" do not."""
    words = re.findall(r"[a-z0-9]+", class_name.lower())
    return "idc" in words and _NEGATIONS.isdisjoint(words)


def _as_float(value):
    """A JSON number as float (huge integers become inf, refused later); anything else unchanged."""
    if _is_number(value):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    return value


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
            raise ModelError(f"sidecar: dense.output_stride_px must be a whole number of model pixels >= 1, got {short(s)}")

    @classmethod
    def from_dict(cls, data: Any, where: str = "sidecar") -> "DenseSpec":
        if not isinstance(data, dict) or "output_stride_px" not in data:
            raise ModelError(f"{where}: dense must be an object {{\"output_stride_px\": S}} (S in model pixels), "
                             f"got {short(data)}; remove it for a model that runs on patches only")
        unknown = sorted(set(data) - {"output_stride_px"})
        if unknown:
            raise ModelError(f"{where}: dense has unknown key(s) {', '.join(unknown)}; only output_stride_px is known")
        try:
            return cls(data["output_stride_px"])
        except ModelError as e:
            raise ModelError(f"{where}: {str(e).removeprefix('sidecar: ')}") from None


@dataclass(frozen=True)
class ContextSpec:
    """How a window's score is read with its neighbours' (see :mod:`idc_edge.context`).

    Attributes:
        sigma_px: width of the neighbourhood, model pixels (σ of its Gaussian weights), in
            [:data:`MIN_CONTEXT_SIGMA_PX`, :data:`MAX_CONTEXT_SIGMA_PX`].
        weight: how much the neighbourhood counts against the window's own score, in
            [0, :data:`MAX_CONTEXT_WEIGHT`].
        threshold: a window is IDC when its combined score is >= this probability.
    """

    sigma_px: float
    weight: float
    threshold: float

    def __post_init__(self):
        for key, fits, what in (("sigma_px", lambda v: MIN_CONTEXT_SIGMA_PX <= v <= MAX_CONTEXT_SIGMA_PX,
                                 f"a number of model pixels above 0 and at most {MAX_CONTEXT_SIGMA_PX:g} (and at least "
                                 f"{MIN_CONTEXT_SIGMA_PX:g}: a narrower neighbourhood holds no neighbour)"),
                                ("weight", lambda v: 0 <= v <= MAX_CONTEXT_WEIGHT,
                                 f"a number from 0 to {MAX_CONTEXT_WEIGHT:g}"),
                                ("threshold", lambda v: 0 <= v <= 1, "a probability from 0 to 1")):
            v = getattr(self, key)
            if not (_is_number(v) and math.isfinite(v) and fits(v)):
                raise ModelError(f"sidecar: context.{key} must be {what}, got {short(v)}")
            object.__setattr__(self, key, float(v))

    @classmethod
    def from_dict(cls, data: Any, where: str = "sidecar") -> "ContextSpec":
        keys = ("sigma_px", "weight", "threshold")
        if not isinstance(data, dict) or any(k not in data for k in keys):
            raise ModelError(f"{where}: context must be an object {{\"sigma_px\": σ, \"weight\": w, \"threshold\": t}}, "
                             f"got {short(data)}; remove it to decide every window alone")
        unknown = sorted(set(data) - set(keys))
        if unknown:
            raise ModelError(f"{where}: context has unknown key(s) {', '.join(unknown)}; only {', '.join(keys)} are known")
        try:
            return cls(*(data[k] for k in keys))
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
    context: ContextSpec | None = None

    def __post_init__(self):
        if not _is_int(self.patch_size_px) or not 8 <= self.patch_size_px <= 4096:
            raise ModelError(f"sidecar: patch_size_px must be a whole number of pixels from 8 to 4096, "
                             f"got {short(self.patch_size_px)}")
        if not _is_number(self.um_per_px) or not math.isfinite(self.um_per_px) or self.um_per_px <= 0:
            raise ModelError(f"sidecar: um_per_px must be a positive number of microns per pixel, got {short(self.um_per_px)}")
        if bad := implausible_um_per_px(self.um_per_px):  # 1e-300 passed, and the memory error then blamed --um-per-px
            raise ModelError(f"sidecar: um_per_px is {bad}; fix the model's "
                             "sidecar (the training patches' scale, 4 for the Kaggle set)")
        if not isinstance(self.channel_order, str) or self.channel_order not in CHANNEL_ORDERS:
            raise ModelError(f"sidecar: channel_order must be 'RGB' or 'BGR', got {short(self.channel_order)}")
        if not _is_number(self.threshold) or not 0.0 <= self.threshold <= 1.0:
            raise ModelError(f"sidecar: threshold must be a probability between 0 and 1, got {short(self.threshold)}")
        if not isinstance(self.class_names, (tuple, list)) or len(self.class_names) != 2 \
                or not all(isinstance(c, str) for c in self.class_names):
            raise ModelError(f"sidecar: class_names must be two names (index 1 = IDC), got {short(self.class_names)}")
        if not names_idc(self.class_names[1]) or names_idc(self.class_names[0]):
            # the runtime reads the model's output 1 as IDC: names saying otherwise contradict the model
            raise ModelError(f"sidecar: class_names must name the negative class first and IDC second, e.g. "
                             f"[\"no IDC\", \"IDC\"] (the runtime reads output 1 as IDC), got {short(list(self.class_names))}")
        if self.float_model is not None and (not isinstance(self.float_model, str) or not self.float_model.strip()
                                             or "\0" in self.float_model):
            raise ModelError(f"sidecar: float_model must be a file name, got {short(self.float_model)}")
        if not isinstance(self.provenance, dict):
            raise ModelError(f"sidecar: provenance must be a JSON object, got {short(self.provenance)}")
        if self.model_sha256 is not None:
            if not isinstance(self.model_sha256, str) or not _SHA256.fullmatch(self.model_sha256):
                raise ModelError(f"sidecar: model_sha256 must be the model's SHA-256 as 64 hexadecimal digits, "
                                 f"got {short(self.model_sha256)}")
            object.__setattr__(self, "model_sha256", self.model_sha256.lower())  # hex digits in either case
        if isinstance(self.dense, dict):  # as written in JSON: {"output_stride_px": S}
            object.__setattr__(self, "dense", DenseSpec.from_dict(self.dense))
        if self.dense is not None:
            if not isinstance(self.dense, DenseSpec):
                raise ModelError(f"sidecar: dense must be {{\"output_stride_px\": S}}, got {short(self.dense)}")
            if self.dense.output_stride_px > self.patch_size_px:
                raise ModelError(f"sidecar: dense.output_stride_px {self.dense.output_stride_px} is larger than the "
                                 f"{self.patch_size_px} px patch (windows would leave gaps)")
        if isinstance(self.context, dict):
            object.__setattr__(self, "context", ContextSpec.from_dict(self.context))
        if self.context is not None and not isinstance(self.context, ContextSpec):
            raise ModelError(f"sidecar: context must be {{\"sigma_px\": σ, \"weight\": w, \"threshold\": t}}, "
                             f"got {short(self.context)}")

    def with_threshold(self, threshold: float) -> "ModelSpec":
        return replace(self, threshold=threshold)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        if self.dense is None:
            del d["dense"]  # a patch-only model's sidecar stays as it always was
        if self.context is None:
            del d["context"]
        return {"format_version": FORMAT_VERSION, **d}

    @classmethod
    def from_dict(cls, data: Any, where: str = "sidecar") -> "ModelSpec":
        if not isinstance(data, dict):
            raise ModelError(f"{where}: expected a JSON object, got {type(data).__name__}")
        known = ("format_version", *cls.__dataclass_fields__)
        unknown = [k for k in data if k not in known]
        if unknown:
            raise ModelError(f"{where}: unknown key {short(unknown[0])}{did_you_mean(unknown[0], known, 'a sidecar')}; "
                             "fix or remove it")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ModelError(f"{where}: format_version {short(version)} is not supported (this idc-edge reads {FORMAT_VERSION})")
        required = ("patch_size_px", "um_per_px", "channel_order", "threshold", "class_names")
        missing = [k for k in required if k not in data]
        if missing:
            raise ModelError(f"{where}: missing key(s) {', '.join(missing)}")
        try:
            return cls(
                patch_size_px=data["patch_size_px"], um_per_px=_as_float(data["um_per_px"]),
                channel_order=data["channel_order"], threshold=_as_float(data["threshold"]),
                class_names=tuple(data["class_names"]) if isinstance(data["class_names"], list) else data["class_names"],
                float_model=data.get("float_model"),
                provenance={} if data.get("provenance") is None else data["provenance"],
                model_sha256=data.get("model_sha256"),
                dense=None if data.get("dense") is None else DenseSpec.from_dict(data["dense"]),
                context=None if data.get("context") is None else ContextSpec.from_dict(data["context"]),
            )
        except ModelError as e:
            raise ModelError(f"{where}: {str(e).removeprefix('sidecar: ')}") from None


def sidecar_path(model_path: str | os.PathLike) -> Path:
    """``model.tflite`` → ``model.json``."""
    return Path(model_path).with_suffix(".json")


def read_spec(model_path: str | os.PathLike) -> ModelSpec:
    """Read and validate the sidecar of ``model_path``.

    Raises:
        ModelError: the sidecar is missing, not JSON, or its values are invalid.
    """
    path = sidecar_path(model_path)
    if not os.path.lexists(path):
        raise ModelError(f"model sidecar {name(path)} is missing: every model needs <name>.json next to "
                         "<name>.tflite (patch_size_px, um_per_px, channel_order, threshold, class_names)")
    raw = read_bytes(path, "model sidecar", ModelError)
    try:
        # utf-8-sig: a Windows editor starts the file with a byte-order mark (profiles and results files take one too)
        data = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=unique_keys)
    except RepeatedKey as e:
        raise ModelError(f"model sidecar {name(path)}: key {short(e.key)} is given twice (the last would "
                         "silently win); keep one") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelError(f"model sidecar {name(path)} is not valid JSON ({short(str(e), 120)}); "
                         "fix or regenerate it") from None
    return ModelSpec.from_dict(data, where=f"model sidecar {name(path)}")


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_spec(model_path: str | os.PathLike, spec: ModelSpec) -> Path:
    """Write ``spec`` as the sidecar of ``model_path``; returns the sidecar's path.

    When the model file exists, its SHA-256 is recorded in ``model_sha256`` so a damaged copy
    is refused at load. The file is replaced atomically (:func:`~idc_edge.fileio.write_whole`).

    Raises:
        RecordError: the sidecar cannot be written; an earlier one is kept whole.
    """
    if Path(model_path).is_file():
        spec = replace(spec, model_sha256=file_sha256(model_path))
    path = sidecar_path(model_path)
    from .errors import RecordError
    from .fileio import write_whole

    # whole or not at all: a crash or full disk never leaves a cut sidecar beside a good model
    write_whole(path, (json.dumps(spec.to_dict(), indent=2, sort_keys=False) + "\n").encode("utf-8"),
                "model sidecar", error=RecordError)
    return path
