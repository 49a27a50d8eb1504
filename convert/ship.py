"""Ship a converted int8 model as the package default, with the float32 model of the same weights.

``python -m convert.ship --from runs/convert`` copies the variant the conversion run chose (or
``--variant NAME``) to ``idc_edge/models/idc_int8.tflite`` and its float reference to
``idc_edge/models/idc_float32.tflite``, each with a sidecar whose provenance says where it came
from and how it scored on the validation patients. Both must be the calibrated files
``variants.json`` records (same SHA-256, a threshold chosen on validation patients, the same source
model); anything else is refused in one line. ``python -m convert --ship`` does the same at the
end of a run.
"""
from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

from idc_edge.classifier import MODELS_DIR
from idc_edge.errors import IdcEdgeError, ModelError, RecordError
from idc_edge.fileio import write_whole
from idc_edge.jsonready import utc_now
from idc_edge.spec import ModelSpec, read_spec, write_spec

from .variants import Variant, check_recorded, read_manifest

INT8_NAME = "idc_int8.tflite"
FLOAT_NAME = "idc_float32.tflite"


def check_consistent(v: Variant, info: dict, conversion_dir) -> ModelSpec:
    """The variant's sidecar, once its file is the one ``variants.json`` records and it is calibrated.

    Raises:
        ModelError: no recorded SHA-256, a file or sidecar of another run (:func:`check_recorded`), or an
            uncalibrated threshold.
    """
    where, again = f"{v.path.name} in {str(conversion_dir)!r}", f"run python -m convert --out {conversion_dir} again"
    spec = check_recorded(v, conversion_dir)
    prov = spec.provenance or {}
    if not prov.get("threshold_chosen_on") or not prov.get("validation_metrics"):
        raise ModelError(f"{where} has no calibrated threshold (its sidecar records no validation); {again}")
    if prov.get("source_model_sha256") != info.get("source_model_sha256"):
        raise ModelError(f"{where} was converted from another model than variants.json names; {again}")
    return spec


def ship(conversion_dir: str | os.PathLike, variant: str | None = None,
         dest: str | os.PathLike = MODELS_DIR) -> tuple[Path, Path]:
    """Copy the chosen int8 variant and its float32 reference into ``dest``.

    Args:
        conversion_dir: output folder of ``python -m convert`` (holds ``variants.json``).
        variant: the int8 variant to ship; None for the one the run chose.
        dest: where the package's models live.

    Returns:
        paths of the shipped int8 and float32 models.

    Raises:
        ModelError: the folder has no manifest, no choice, ``variant`` is not full-integer, or a file
            to ship is not the calibrated one ``variants.json`` records (:func:`check_consistent`).
    """
    variants, info = read_manifest(conversion_dir)
    by_name = {v.name: v for v in variants}
    name = variant or (info.get("selection") or {}).get("chosen")
    if name is None:
        raise ModelError(f"{str(conversion_dir)!r} records no chosen variant; pass --variant NAME")
    if name not in by_name or not by_name[name].full_integer:
        ints = [v.name for v in variants if v.full_integer]
        raise ModelError(f"cannot ship {name!r}: choose one of the full-integer variants {', '.join(ints)}")
    chosen = by_name[name]
    ref = by_name.get(chosen.reference) or by_name["float32"]
    int8_spec, ref_spec = (check_consistent(v, info, conversion_dir) for v in (chosen, ref))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shipped = utc_now()
    run_choice = info.get("selection") or {}
    reason = run_choice.get("reason") if run_choice.get("chosen") == name else f"{name} chosen by hand (--variant)"
    common = {"shipped": shipped, "shipped_from": str(Path(conversion_dir)), "selection_reason": reason}
    int8_prov = {**int8_spec.provenance, **common, "variant": chosen.name,
                 "float_model_variant": ref.name,
                 "validation_metrics_float": ref_spec.provenance.get("validation_metrics")}
    ref_prov = {**ref_spec.provenance, **common, "variant": ref.name, "int8_model": INT8_NAME}
    int8_dst, ref_dst = dest / INT8_NAME, dest / FLOAT_NAME
    write_whole(int8_dst, chosen.path.read_bytes(), "model", error=RecordError)  # never a cut shipped model
    write_spec(int8_dst, replace(int8_spec, float_model=FLOAT_NAME, provenance=int8_prov))
    write_whole(ref_dst, ref.path.read_bytes(), "model", error=RecordError)
    write_spec(ref_dst, replace(ref_spec, float_model=None, provenance=ref_prov))
    return int8_dst, ref_dst


def main(argv: list[str] | None = None) -> int:
    from idc_edge.cli.options import Parser

    ap = Parser(prog="python -m convert.ship", description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="src", default="runs/convert", help="output folder of python -m convert")
    ap.add_argument("--variant", help="int8 variant to ship (default: the one the run chose)")
    ap.add_argument("--dest", default=str(MODELS_DIR), help="destination folder (default: the package's models)")
    try:
        args = ap.parse_args(argv)
        a, b = ship(args.src, args.variant, args.dest)
    except IdcEdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"shipped {a} (threshold {read_spec(a).threshold:.3f}) and {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
