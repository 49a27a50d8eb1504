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

``glare`` (0 unless asked: ``python -m train --glare P``) gives, with probability P, veiling glare
g ~ U(0.05, 0.40) (stray light, ``Camera.glare``), drawn after everything else so the other draws stay
the same; below the runtime's washed-out gate (~40 %) the model called benign tissue IDC through it,
worse with a colour cast (sweep14 FINDINGS, class B).

Order, as in a camera: scale, defocus, glare with the cast and exposure gain, noise, gamma, JPEG. Images are
RGB uint8 at 4 µm/px in and out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import camera_sim as cs

CAMERA_FAMILIES = ("defocus", "noise", "jpeg", "exposure", "cast", "scale")


@dataclass(frozen=True)
class CameraAugment:
    """Which camera families are on, and how often each is applied."""

    families: tuple[str, ...] = CAMERA_FAMILIES
    p: float = 0.35
    p_colour: float = 0.6
    grain_with_cast: float = 0.0
    glare: float = 0.0

    def __post_init__(self):
        if not 0 <= self.glare <= 1:
            raise ValueError(f"camera augmentation: glare must be a probability from 0 to 1, got {self.glare}")
        bad = [f for f in self.families if f not in CAMERA_FAMILIES]
        if bad or not all(0 <= v <= 1 for v in (self.p, self.p_colour, self.grain_with_cast)):
            raise ValueError(f"camera augmentation: unknown famil(ies) {bad} or a probability outside 0-1 "
                             f"({self.p}, {self.p_colour}, {self.grain_with_cast})")

    def draw(self, rng: np.random.Generator) -> tuple[cs.Camera, float]:
        """A random camera (at 4 or 2 µm/px) and a magnification for one image."""
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
        elif on["cast"] and self.grain_with_cast > 0 and rng.random() < self.grain_with_cast:
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
        if self.glare > 0 and rng.random() < self.glare:
            kw["glare"] = float(rng.uniform(0.05, 0.40))
        return cs.Camera(**kw), scale

    def apply(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random camera per image of an RGB uint8 batch ``[N, H, W, 3]`` (new array)."""
        out = np.empty_like(images)
        for i, img in enumerate(images):
            camera, scale = self.draw(rng)
            if scale != 1.0:
                img = cs.scale_jitter(img, scale)
            out[i] = camera.apply(img, rng)
        return out
