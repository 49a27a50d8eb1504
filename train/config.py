"""Option values of the training pipeline that need no TensorFlow (so bad options fail fast)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CLASSIC_AUGMENTATIONS = ("flip", "rot90", "stain", "hsv", "brightness", "contrast")
# Camera families (train/camera_augment.py, numpy): optics, sensor, exposure, cast, JPEG, scale.
CAMERA_AUGMENTATIONS = ("defocus", "noise", "jpeg", "exposure", "cast", "scale")
# Combined camera conditions drawn with the families (AugmentStrength, train/camera_augment.py): their
# probabilities, as the command line names them.
COMBINED_DRAWS = ("grain_with_cast", "hue_with_cast", "dim_with_grain", "weak_haematoxylin", "glare")
AUGMENTATIONS = CLASSIC_AUGMENTATIONS + CAMERA_AUGMENTATIONS
PRESETS = {
    "none": (),
    "geometric": ("flip", "rot90"),
    "stain": ("flip", "rot90", "stain", "hsv"),
    "classic": CLASSIC_AUGMENTATIONS,
    "all": AUGMENTATIONS,
}


@dataclass(frozen=True)
class AugmentStrength:
    """Magnitudes of the colour augmentations (ranges are uniform, per patch)."""

    stain_scale: float = 0.2  # each stain's optical density × U(1 - s, 1 + s)
    haematoxylin_scale: float | None = None  # haematoxylin's alone × U(1 - h, 1 + h); None: stain_scale
    grain_with_cast: float = 0.0  # probability of low-light grain with a cast (train.camera_augment)
    hue_with_cast: float = 0.0  # probability of a camera hue setting ±(15-30)° with a cast
    dim_with_grain: float = 0.0  # probability of under-exposure ×0.45-0.8 with grain-with-cast's grain
    weak_haematoxylin: float = 0.0  # probability of haematoxylin ×0.55-0.8 with red blur, hue or saturation
    stain_shift: float = 0.04  # ... + U(-s, s) (optical density units)
    hue: float = 0.04  # hue shift U(-h, h), in turns of the colour wheel
    saturation: float = 0.25  # saturation × U(1 - s, 1 + s)
    brightness: float = 20.0  # + U(-b, b) on 0–255
    contrast: float = 0.2  # (x - mean) × U(1 - c, 1 + c) + mean
    glare: float = 0.0  # probability of veiling glare g ~ U(0.05, 0.40) (train.camera_augment)


def parse_augment(spec: str) -> tuple[str, ...]:
    """``"flip,rot90,stain"``, a preset name (none, geometric, stain, classic, all), or
    ``"all-jpeg,noise"`` (a preset minus some names) → augmentation names.

    Raises:
        ValueError: an unknown name.
    """
    spec = spec.strip()
    if spec in PRESETS:
        return PRESETS[spec]
    base, minus, removed = spec.partition("-")
    if minus and base.strip() in PRESETS:
        drop = set(parse_augment(removed))
        return tuple(n for n in PRESETS[base.strip()] if n not in drop)
    names = tuple(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown or not names:
        raise ValueError(f"--augment: unknown augmentation {', '.join(unknown) or repr(spec)}; expected a "
                         f"comma-separated list of {', '.join(AUGMENTATIONS)} or one of {', '.join(PRESETS)}")
    return tuple(n for n in AUGMENTATIONS if n in names)  # fixed order: geometry, then colour


DEFAULT_AUGMENT = parse_augment("all-jpeg")
"""The shipped recipe's augmentations: everything but JPEG (it did not help, EXPERIMENTS.md)."""

DEFAULT_TEACHER = str(Path(__file__).resolve().parent / "teachers" / "s2_deep_int8.tflite")
"""The first-generation s2_deep int8 model, the second generation's distillation teacher."""


def teacher_paths(teacher: str) -> list[str]:
    """The model files of a ``--teacher`` value: one path, or several separated by commas (an ensemble)."""
    return [p.strip() for p in teacher.split(",") if p.strip()]
