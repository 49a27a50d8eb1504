"""``idc-edge calibrate white|scale``: measure a microscope's white reference or microns per pixel
and save them in its profile (``--profile NAME``).

    idc-edge calibrate white --camera 0 --size 1920x1080 --fourcc MJPG --profile olympus-10x   # blank glass in view
    idc-edge calibrate scale --camera 0 --size 1920x1080 --spacing-um 10 --profile olympus-10x  # stage micrometer
    idc-edge calibrate white --source glass.png --profile olympus-10x                           # from an image

From a camera, the first frames are dropped (exposure settling) and several are averaged.
"""
from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np

from .. import validate
from ..jsonready import dumps
from .options import add_camera_args, number, whole_number

#: A dark spot on the blank glass taking this share of the light or more is warned about: the
#: camera-conditions benchmark keeps ≥ 95 % agreement with 3 spots taking 30 % and 10 taking 70 %, but
#: 15-20 taking 80 % turned IDC benign on 13 % of windows.
DUST_WARNING = 0.3


#: The most camera frames ``calibrate`` averages: 33 s at 30 fps. Noise falls as 1/sqrt(N), so a few
#: hundred frames say all they can; their float32 sum stays exact (1000 × 255 ≪ 2**24), where 10**5
#: frames lose precision and 10**11 would run for years.
MAX_FRAMES = 1000


def add_parser(sub) -> None:
    p = sub.add_parser("calibrate", help="measure white balance (blank glass) or um/px (stage micrometer) into a "
                                         "microscope profile",
                       description="Measure a microscope's white reference or scale and save it in a profile under "
                                   "~/.config/idc-edge/profiles (or $XDG_CONFIG_HOME).")
    p.add_argument("what", choices=("white", "scale"), help="white: blank glass in view; scale: a stage micrometer")
    add_camera_args(p, "an image (or video) of blank glass or of the micrometer instead of a camera")
    p.add_argument("--spacing-um", type=number("--spacing-um"), metavar="UM",
                   help="scale: distance between neighbouring micrometer ticks in um (often 10)")
    p.add_argument("--frames", type=whole_number("--frames"), metavar="N",
                   help=f"camera frames to average, 1 to {MAX_FRAMES} (default 8)")
    p.add_argument("--camera-timeout", type=number("--camera-timeout"), metavar="S",
                   help="a camera: give up after S seconds without frames (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_calibrate)


def _grab(setup, frames: int, timeout_s: float):
    """(mean BGR uint8 frame, the open source's granted mode or None) from the camera or the source file."""
    from ..budget import check_buffer
    from ..errors import SourceError
    from ..sources import open_source

    if setup.camera is not None:
        source = open_source(camera=setup.camera, mode=setup.mode, controls=setup.controls, camera_timeout_s=timeout_s)
    else:
        source = open_source(setup.source)
    settle = 5 if setup.camera is not None else 0
    want = frames if setup.camera is not None else 1
    total, n = None, 0
    with source:
        for i, frame in enumerate(source):
            if i < settle:
                continue
            check_buffer((*frame.image.shape[:2], 3), 4, f"averaging {frame.image.shape[1]}×{frame.image.shape[0]} "
                         "px frames for calibration", "use a smaller frame (--size) or image")
            img = frame.image.astype(np.float32)
            if total is None:
                total = img
            elif total.shape != img.shape:
                raise SourceError(f"{source.description} changed frame size while calibrating")
            else:
                total += img
            n += 1
            if n >= want:
                break
        granted = getattr(source, "granted", None)
    if total is None:
        raise SourceError(f"{source.description} gave no frame to calibrate on")
    return np.clip(total / n + 0.5, 0, 255).astype(np.uint8), granted


def cmd_calibrate(args) -> int:
    from ..colour import measure_white
    from ..errors import OptionError
    from ..micrometer import measure_ticks
    from ..profiles import update_profile
    from ..sources.modes import CameraMode, field_of_view_mm
    from .camera_setup import resolve

    if not args.profile:
        raise OptionError("calibrate needs --profile NAME: the profile the result is saved in")
    frames = 8 if args.frames is None else validate.whole_number("frames", args.frames, maximum=MAX_FRAMES,
                                                                    unit="camera frames to average")
    if args.what == "scale" and args.spacing_um is None:
        raise OptionError("calibrate scale needs --spacing-um: the micrometer's tick spacing in um (often 10)")
    if args.spacing_um is not None:  # checked before any frame is grabbed
        validate.spacing_um("spacing_um", args.spacing_um)
    setup = resolve(args, for_calibration=True)
    image, granted = _grab(setup, frames, setup.camera_timeout_s)
    h, w = image.shape[:2]
    # saved onto the profile as it is on disk when this one is measured (update_profile): what it held
    # when the calibration started may have been changed meanwhile by another calibration of it
    camera_mode = None
    if setup.camera is not None:  # remember the camera and the mode it really gave
        g = granted or CameraMode()
        camera_mode = (str(setup.camera), CameraMode(w, h, g.fps or setup.mode.fps, g.fourcc or setup.mode.fourcc))

    def with_camera(profile):
        return profile if camera_mode is None else replace(profile, camera=camera_mode[0], mode=camera_mode[1])

    if args.what == "white":
        cal = measure_white(image)
        locked = setup.controls.lock_exposure and setup.controls.lock_white_balance

        def white(profile):
            profile = with_camera(profile)
            return replace(profile, white_gains_rgb=cal.gains_rgb, glass_rgb=cal.glass_rgb, target_rgb=cal.target_rgb,
                           exposure={**profile.exposure, "clipped_fraction": round(cal.clipped_fraction, 5),
                                     "uniformity": round(cal.uniformity, 4), "locked": bool(locked)})

        _, path = update_profile(args.profile, white)  # where --profile says: a name or a .toml path
        result = {"profile": str(path), "gains_rgb": [round(g, 4) for g in cal.gains_rgb],
                  "glass_rgb": [round(g, 1) for g in cal.glass_rgb], "target_rgb": list(cal.target_rgb),
                  "clipped_fraction": cal.clipped_fraction, "uniformity": cal.uniformity,
                  "dust_spots": cal.dust_spots, "darkest_spot": round(cal.darkest_spot, 3), "frame": [w, h]}
        text = (f"white reference saved to {path}: gains R {cal.gains_rgb[0]:.3f} G {cal.gains_rgb[1]:.3f} "
                f"B {cal.gains_rgb[2]:.3f} (glass was RGB {cal.glass_rgb[0]:.0f}, {cal.glass_rgb[1]:.0f}, "
                f"{cal.glass_rgb[2]:.0f}); {100 * cal.clipped_fraction:.1f} % clipped, darkest corner at "
                f"{100 * cal.uniformity:.0f} % of the centre; {cal.dust_spots} dark spot(s)")
        if cal.darkest_spot >= DUST_WARNING:
            print(f"idc-edge: warning: {cal.dust_spots} dark spot(s) on the blank glass, the darkest taking "
                  f"{100 * cal.darkest_spot:.0f} % of the light: dust on the slide, the camera window or the sensor; "
                  "clean them (tissue under dust on the camera reads darker, and the model may call IDC benign there)",
                  file=sys.stderr)
        if cal.uniformity < 0.8:
            print("idc-edge: warning: the illumination is uneven (a corner at "
                  f"{100 * cal.uniformity:.0f} % of the centre): centre the condenser and set Koehler illumination",
                  file=sys.stderr)
        if not locked and setup.camera is not None:
            print("idc-edge: warning: the camera's automatic exposure or white balance is on, so these gains hold "
                  "only while it stays put: calibrate with --lock-exposure --lock-white-balance where the camera "
                  "allows", file=sys.stderr)
    else:
        m = measure_ticks(image)
        um = m.um_per_px(args.spacing_um)
        _, path = update_profile(args.profile, lambda p: with_camera(p).with_scale(um, (w, h), args.spacing_um))
        fw, fh = field_of_view_mm(w, h, um)
        result = {"profile": str(path), "um_per_px": um, "period_px": m.period_px, "angle_deg": m.angle_deg,
                  "ticks_in_view": m.ticks_in_view, "peak_ratio": m.peak_ratio, "frame": [w, h],
                  "field_of_view_mm": [fw, fh]}
        text = (f"scale saved to {path}: {um:.4f} um/px at {w}x{h} (ticks {m.period_px:.3f} px apart, "
                f"{m.ticks_in_view:.0f} in view, ruler at {m.angle_deg:.1f} deg); field of view {fw:.2f} x {fh:.2f} mm")
    print(dumps(result) if args.json else text)
    return 0
