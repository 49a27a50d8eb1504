"""Random camera effects for training, drawn per image from :mod:`train.camera_sim` (numpy only).

Each family is applied to an image with probability ``p`` (``p_colour`` for ``exposure`` and
``cast``, which the ablation in EXPERIMENTS.md found to matter most) and a random strength:

- ``defocus``: Gaussian PSF σ ~ U(0.5, 6) µm or, one time in three, a disk PSF r ~ U(2, 8) µm;
- ``noise``: shot + read noise, full well ~ log-uniform(150, 6000) e⁻ at white, read noise ~ U(2, 10) e⁻;
- ``jpeg``: quality ~ U(45, 95) at a camera scale of 2 µm/px, then the area rescale (2 µm/px is
  harsher than a 1 µm/px camera's, whose 4× area rescale hides more, and 4× cheaper to train with);
- ``exposure``: gain ~ log-uniform(0.5, 1.6) in linear light and gamma ~ U(0.8, 1.25);
- ``cast``: red and blue gains ~ U(0.75, 1.25) each in linear light (green 1);
- ``scale``: magnification ~ U(0.9, 1.1) about the centre (a camera's µm/px known to ±10 %).

``grain_with_cast`` (0 unless asked: ``python -m train --grain-with-cast P``) adds, with probability P,
low-light grain (full well ~ log-uniform(150, 600) e⁻) to an image that drew a cast but no grain: drawn
independently, a ≥ 20 % cool cast with that little light is about 0.06 % of the images, and the model
then called benign tissue IDC through such a camera (EXPERIMENTS.md, section 9).

Three more draws of combined conditions, each 0 unless asked (EXPERIMENTS.md, section 11), found by the
second search of combined camera conditions as the model's blind spots:

- ``hue_with_cast`` (``--hue-with-cast P``): with probability P an image that drew a cast also gets the
  camera's (ISP's) hue setting turned by ±U(15°, 30°) on its encoded values, after the tone curve and
  before JPEG (the training hsv jitter draws only ±14.4° and independently of casts; hue −20° with a
  cool 20 % cast turned eosin violet and benign tissue was called IDC);
- ``dim_with_grain`` (``--dim-with-grain P``): with probability P an image that got grain through
  ``grain_with_cast`` is also under-exposed, gain ~ log-uniform(0.45, 0.8), unless the exposure family
  already drew a gain (low light ×0.5 at 500 e⁻ with a cool 20 % cast);
- ``weak_haematoxylin`` (``--weak-haematoxylin P``): with probability P the slide's haematoxylin (alone,
  Ruifrok–Johnston unmixing, before the camera) × U(0.55, 0.8), drawn together with one second loss of
  nuclear contrast: the red channel out of focus (Gaussian σ ~ U(1.5, 3) µm), a hue setting ±U(15°, 30°)
  or a saturation setting × U(1.3, 1.8), one of the three at random (a weak haematoxylin with any of them
  missed IDC; a weak haematoxylin alone on every image cost low-light robustness, section 8).

``glare`` (0 unless asked: ``python -m train --glare P``) gives, with probability P, veiling glare
g ~ U(0.05, 0.40) (stray light, ``Camera.glare``), drawn after everything else so the other draws stay
the same; below the runtime's washed-out gate (~40 %) the model called benign tissue IDC through it,
worse with a colour cast (sweep14 FINDINGS, class B).

Order, as in a camera: scale, defocus, glare with the cast and exposure gain, noise, gamma, hue and
saturation settings, JPEG. Images are RGB uint8 at 4 µm/px in and out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import camera_sim as cs
from .config import COMBINED_DRAWS

CAMERA_FAMILIES = ("defocus", "noise", "jpeg", "exposure", "cast", "scale")


@dataclass(frozen=True)
class CameraAugment:
    """Which camera families are on, and how often each is applied."""

    families: tuple[str, ...] = CAMERA_FAMILIES
    p: float = 0.35
    p_colour: float = 0.6
    grain_with_cast: float = 0.0
    hue_with_cast: float = 0.0
    dim_with_grain: float = 0.0
    weak_haematoxylin: float = 0.0
    glare: float = 0.0

    def __post_init__(self):
        bad = [f for f in self.families if f not in CAMERA_FAMILIES]
        outside = [f"{name} {getattr(self, name)}" for name in ("p", "p_colour", *COMBINED_DRAWS)
                   if not 0 <= getattr(self, name) <= 1]  # NaN too
        if bad or outside:
            raise ValueError(f"camera augmentation: unknown famil(ies) {bad} or a probability outside 0-1 {outside}")

    def draw(self, rng: np.random.Generator) -> tuple[cs.Camera, float]:
        """A random camera (at 4 or 2 µm/px) and a magnification for one image."""
        camera, scale, _ = self.draw_image(rng)
        return camera, scale

    def draw_image(self, rng: np.random.Generator) -> tuple[cs.Camera, float, float]:
        """A random camera (at 4 or 2 µm/px), a magnification and the slide's haematoxylin factor
        (1 = as scanned) for one image. The draws added after ``grain_with_cast`` come last and only
        when their probability is above 0, so every earlier draw is the same with them off."""
        on = {f: (f in self.families and rng.random() < (self.p_colour if f in ("exposure", "cast") else self.p))
              for f in CAMERA_FAMILIES}
        kw: dict = {"um_per_px": cs.MODEL_UM_PER_PX}
        if on["defocus"]:
            if rng.random() < 1 / 3:
                kw["blur_disk_um"] = float(rng.uniform(2.0, 8.0))
            else:
                kw["blur_sigma_um"] = float(rng.uniform(0.5, 6.0))
        if on["noise"]:
            kw["full_well_e"] = float(np.exp(rng.uniform(np.log(150.0), np.log(6000.0))))
            kw["read_noise_e"] = float(rng.uniform(2.0, 10.0))
        cast_grain = False
        if not on["noise"] and on["cast"] and self.grain_with_cast > 0 and rng.random() < self.grain_with_cast:
            cast_grain = True
            kw["full_well_e"] = float(np.exp(rng.uniform(np.log(150.0), np.log(600.0))))
            kw["read_noise_e"] = float(rng.uniform(2.0, 10.0))
        if on["jpeg"]:
            kw["jpeg_quality"] = int(rng.integers(45, 96))
            kw["um_per_px"] = 2.0
        if on["exposure"]:
            kw["gain"] = float(np.exp(rng.uniform(np.log(0.5), np.log(1.6))))
            kw["gamma"] = float(rng.uniform(0.8, 1.25))
        if on["cast"]:
            kw["cast"] = (float(rng.uniform(0.75, 1.25)), 1.0, float(rng.uniform(0.75, 1.25)))
        scale = float(rng.uniform(0.9, 1.1)) if on["scale"] else 1.0
        # combined conditions (module docstring), drawn only when asked
        if cast_grain and not on["exposure"] and self.dim_with_grain > 0 and rng.random() < self.dim_with_grain:
            kw["gain"] = float(np.exp(rng.uniform(np.log(0.45), np.log(0.8))))
        if on["cast"] and self.hue_with_cast > 0 and rng.random() < self.hue_with_cast:
            kw["hue_deg"] = _signed_angle(rng)
        haematoxylin = 1.0
        if self.weak_haematoxylin > 0 and rng.random() < self.weak_haematoxylin:
            haematoxylin = float(rng.uniform(0.55, 0.8))
            second = int(rng.integers(3))
            if second == 0:
                kw["blur_red_um"] = float(rng.uniform(1.5, 3.0))
            elif second == 1:
                kw["hue_deg"] = _signed_angle(rng)
            else:
                kw["saturation"] = float(rng.uniform(1.3, 1.8))
        if self.glare > 0 and rng.random() < self.glare:
            kw["glare"] = float(rng.uniform(0.05, 0.40))
        return cs.Camera(**kw), scale, haematoxylin

    def apply(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random camera per image of an RGB uint8 batch ``[N, H, W, 3]`` (new array)."""
        out = np.empty_like(images)
        for i, img in enumerate(images):
            camera, scale, haematoxylin = self.draw_image(rng)
            if haematoxylin != 1.0:
                img = weaken_haematoxylin(img, haematoxylin)
            if scale != 1.0:
                img = cs.scale_jitter(img, scale)
            out[i] = camera.apply(img, rng)
        return out


def _signed_angle(rng: np.random.Generator) -> float:
    """A camera hue setting: ±U(15°, 30°), either sign equally often."""
    return float(rng.choice((-1.0, 1.0)) * rng.uniform(15.0, 30.0))


# Ruifrok & Johnston's stain vectors (rows: haematoxylin, eosin, residual) as unit optical densities,
# as benchmarks.camera_conditions.stain unmixes them.
_OD_FROM_HER = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], np.float64)
_OD_FROM_HER /= np.linalg.norm(_OD_FROM_HER, axis=1, keepdims=True)
_STAIN_H_ONLY = np.linalg.inv(_OD_FROM_HER)


def weaken_haematoxylin(rgb: np.ndarray, factor: float) -> np.ndarray:
    """The slide's haematoxylin alone × ``factor`` (optical densities unmixed into haematoxylin, eosin
    and a residual, the first scaled, mixed back), eosin unchanged; RGB uint8 in and out."""
    od = -np.log(np.maximum(rgb.astype(np.float32), 1.0) / np.float32(255.0))
    scale = np.array([factor, 1.0, 1.0], np.float64)
    m = (_STAIN_H_ONLY * scale[None, :]) @ _OD_FROM_HER  # od -> amounts -> scaled -> od, one matrix
    out = 255.0 * np.exp(-(od.reshape(-1, 3) @ m.astype(np.float32)))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(rgb.shape)
