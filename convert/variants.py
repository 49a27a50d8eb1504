"""The TFLite variants a conversion run produces, and the manifest that lists them.

Every variant is a ``.tflite`` file with its sidecar in one output folder; ``variants.json``
in that folder lists them, so reports and shipping can run later without converting again.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from idc_edge.errors import ModelError
from idc_edge.spec import ModelSpec, file_sha256, read_spec

MANIFEST = "variants.json"


@dataclass(frozen=True)
class VariantKind:
    """What a variant is: its name, how it is made, which float model holds the same weights."""

    name: str
    method: str
    reference: str
    full_integer: bool


KINDS: dict[str, VariantKind] = {k.name: k for k in (
    VariantKind("float32", "float32 TFLite of the trained Keras model (the reference)", "float32", False),
    VariantKind("float16", "float16 weights, float32 compute", "float32", False),
    VariantKind("dynamic_int8", "dynamic-range quantization: int8 weights, float activations and input", "float32", False),
    VariantKind("int8_ptq", "full-integer post-training quantization, uint8 input/output, "
                "calibrated on training patients", "float32", True),
    VariantKind("int8_qat", "full-integer, after quantization-aware fine-tuning (tfmot via tf_keras) "
                "on training patients, uint8 input/output", "float32_qat", True),
    VariantKind("float32_qat", "float32 TFLite of the QAT-fine-tuned weights (reference of int8_qat)",
                "float32_qat", False),
)}

REFERENCE_VARIANTS = ("float32", "float16", "dynamic_int8")
"""Made by every run; ``int8_ptq`` too; ``int8_qat`` and ``float32_qat`` when QAT runs."""


def file_name(name: str) -> str:
    """``int8_ptq`` → ``idc_int8_ptq.tflite``."""
    return f"idc_{name}.tflite"


@dataclass(frozen=True)
class Variant:
    """One converted model on disk: its name, file, how it was made and its float reference."""

    name: str
    path: Path
    method: str
    reference: str
    full_integer: bool
    sha256: str | None = None
    """SHA-256 recorded in ``variants.json`` (None while converting or in an old manifest)."""

    @classmethod
    def of(cls, name: str, path: str | os.PathLike) -> "Variant":
        """A variant of a known kind (see :data:`KINDS`)."""
        k = KINDS[name]
        return cls(name, Path(path), k.method, k.reference, k.full_integer)

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def write_manifest(out_dir: str | os.PathLike, variants: list[Variant], info: dict) -> Path:
    """Write ``variants.json``: the variants (file names relative to ``out_dir``, SHA-256 of each
    calibrated file, so shipping can tell a file from another run) and run info."""
    out = Path(out_dir)
    data = {"variants": [{"name": v.name, "file": v.path.name, "sha256": file_sha256(v.path), "method": v.method,
                          "reference": v.reference, "full_integer": v.full_integer} for v in variants], **info}
    path = out / MANIFEST
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def read_manifest(out_dir: str | os.PathLike) -> tuple[list[Variant], dict]:
    """The variants and run info of a conversion folder.

    Raises:
        ModelError: no readable ``variants.json``, or a listed file is missing.
    """
    out = Path(out_dir)
    path = out / MANIFEST
    if not path.is_file():
        raise ModelError(f"{str(path)!r} does not exist: run `python -m convert --out {out}` first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        variants = [Variant(v["name"], out / v["file"], v["method"], v["reference"], bool(v["full_integer"]),
                            v.get("sha256")) for v in data["variants"]]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ModelError(f"{str(path)!r} is not a conversion manifest ({e})") from None
    for v in variants:
        if not v.path.is_file():
            raise ModelError(f"{str(path)!r} lists {v.path.name!r}, which is missing; convert again")
    info = {k: val for k, val in data.items() if k != "variants"}
    return variants, info


def check_recorded(v: Variant, conversion_dir: str | os.PathLike) -> ModelSpec:
    """The sidecar of ``v``, once the file is the one ``variants.json`` records (its SHA-256) and the
    sidecar belongs to that file: what shipping and the quantization report both rely on.

    Raises:
        ModelError: no recorded SHA-256 (an older conversion), or a file or sidecar of another or an
            unfinished run; the message says to convert again.
    """
    where, again = f"{v.path.name} in {str(conversion_dir)!r}", f"run python -m convert --out {conversion_dir} again"
    if v.sha256 is None:
        raise ModelError(f"{MANIFEST} records no SHA-256 of {where} (an older conversion); {again}")
    actual = file_sha256(v.path)
    if actual != v.sha256:
        raise ModelError(f"{where} is not the file {MANIFEST} records (SHA-256 differs: another or an unfinished "
                         f"run); {again}")
    spec = read_spec(v.path)
    if spec.model_sha256 != actual:
        raise ModelError(f"the sidecar of {where} belongs to another file (its SHA-256 differs); {again}")
    return spec
