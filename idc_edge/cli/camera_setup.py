"""From ``--camera/--source``, the mode options, the locks and ``--profile`` to what a run or a
calibration opens: shared by ``run`` and ``calibrate``, resolved once.

Precedence: an option given on the command line wins over the profile; the profile fills in
what is left (camera, size, frame rate, format, µm/px, white gains, locks).

An option that cannot apply to what is opened or done is refused here, once, for every command
that takes it, never silently ignored: a camera's mode, locks, gains, decoding, timeout and
frame count with a file (``--source``), ``--patient`` with anything but a data-set folder,
``--no-white-balance`` without a profile's white reference, ``--snapshots`` without ``--serve``
or ``--show``, ``--spacing-um`` for a white calibration. (FFmpeg and GStreamer refuse an option
their input does not take in the same way; a tool that ignores it lets a user believe a file was
read at 5 fps.)
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from typing import Optional, Union

from ..errors import OptionError
from ..fileio import is_regular_file, name
from ..profiles import Profile, load_profile, load_or_new_profile, profile_path
from ..sources.modes import CameraControls, CameraMode, field_of_view_mm

#: seconds without camera frames before a run or calibration gives up, when ``--camera-timeout`` is not given
CAMERA_TIMEOUT_S = 10.0

#: (argparse dest, flag, why it cannot apply to a file) of every camera-only option
CAMERA_ONLY = (
    ("size", "--size", "a file plays at its own size and rate"),
    ("fps", "--fps", "a file plays at its own size and rate"),
    ("fourcc", "--fourcc", "a file keeps the format it was saved in"),
    ("lock_exposure", "--lock-exposure", "a file's exposure was fixed when it was recorded"),
    ("exposure_us", "--exposure-us", "a file's exposure was fixed when it was recorded"),
    ("lock_white_balance", "--lock-white-balance", "a file's colours were fixed when it was recorded "
                                                   "(--profile corrects them with its white reference)"),
    ("colour_gains", "--colour-gains", "a file's colours were fixed when it was recorded "
                                       "(--profile corrects them with its white reference)"),
    ("full_decode", "--full-decode", "a file is always decoded at full size"),
    ("camera_timeout", "--camera-timeout", "a file ends when it ends, it cannot stall like a camera"),
    ("frames", "--frames", "a file gives one picture to measure (a video its first frame)"),
)


def given(args, dest: str) -> bool:
    """Whether the option ``dest`` was given (its defaults are None or False; a given 0 counts)."""
    value = getattr(args, dest, None)
    return value is not None and value is not False


def check_applies(args, camera, source, profile) -> None:
    """Refuse options that cannot apply to what is opened or done (see the module docstring).

    Raises:
        OptionError: naming the first such option and why.
    """
    if source is not None:
        for dest, flag, reason in CAMERA_ONLY:
            if given(args, dest):
                raise OptionError(f"{flag} applies to a camera only; {reason}: leave it out with --source")
    if given(args, "patient"):
        from ..sources import is_dataset_folder

        if camera is not None or is_regular_file(source) or (os.path.isdir(source) and not is_dataset_folder(source)):
            what = "a camera" if camera is not None else "--source " + name(source)
            raise OptionError(f"--patient applies to a data-set folder only (<patient>/<0|1>/*.png), not to {what}; "
                              "leave it out or give the data set's folder")
    if given(args, "no_white_balance") and (profile is None or not profile.white_gains_rgb):
        raise OptionError("--no-white-balance applies with a --profile that has a white reference (it turns that "
                          "off); " + ("without a profile" if profile is None else f"profile {profile.name!r} has "
                                      "none, so") + " the colours are already left as they come")
    if given(args, "snapshots") and not (given(args, "serve") or given(args, "show")):
        raise OptionError("--snapshots applies with --serve or --show only (their Snapshot button and s key save "
                          "there); without them no snapshot is taken")
    if given(args, "spacing_um") and getattr(args, "what", None) == "white":
        raise OptionError("--spacing-um applies to `calibrate scale` only (the micrometer's tick spacing); "
                          "`calibrate white` measures blank glass")


@dataclass(frozen=True)
class CaptureSetup:
    """What to open and how.

    Attributes:
        camera: the ``--camera`` value (or the profile's camera), None with ``source``.
        source: the ``--source`` path, None with ``camera``.
        mode, controls: what to ask the camera for.
        profile: the profile read (None without ``--profile``); for a run, its scale is dropped
            when ``--um-per-px`` gives a new one (so the frame-size check does not apply).
        um_per_px: microns per pixel (``--um-per-px`` or the profile's), None when unknown.
        um_per_px_from: the profile's file when ``um_per_px`` is its scale, for messages; None for ``--um-per-px``.
        camera_timeout_s: seconds without camera frames before giving up.
    """

    camera: Union[int, str, None]
    source: Optional[str]
    mode: CameraMode
    controls: CameraControls
    profile: Optional[Profile]
    um_per_px: Optional[float]
    camera_timeout_s: float = CAMERA_TIMEOUT_S
    um_per_px_from: Optional[str] = None


def resolve(args, *, for_calibration: bool = False) -> CaptureSetup:
    """The :class:`CaptureSetup` of parsed arguments (``--camera``, ``--source``, ``--size``, ``--fps``,
    ``--fourcc``, locks, ``--profile`` and, where the command has it, ``--um-per-px``).

    For a calibration the profile may not exist yet (it is made); for a run it must.

    Raises:
        ProfileError: the profile is missing or corrupt (a run), or unreadable.
        OptionError: neither a camera nor a source is given, the size is half given, or an option
            cannot apply to what is opened (:func:`check_applies`).
    """
    profile = None
    if args.profile:
        profile = load_or_new_profile(args.profile) if for_calibration else load_profile(args.profile)
    camera, source = args.camera, args.source
    if camera is None and source is None:
        if profile is not None and profile.camera is not None:
            camera = profile.camera
        else:
            raise OptionError("give --camera or --source" + ("" if profile is None else
                              f" (profile {profile.name!r} names no camera)"))
    check_applies(args, camera, source, profile)
    base = profile.mode if (profile is not None and camera is not None) else CameraMode()
    size = args.size or base.size
    mode = CameraMode(size[0] if size else None, size[1] if size else None,
                      args.fps if args.fps is not None else base.fps, args.fourcc or base.fourcc)
    locked = bool(profile is not None and profile.exposure.get("locked"))
    gains = getattr(args, "colour_gains", None)
    controls = CameraControls(lock_exposure=args.lock_exposure or locked, exposure_us=args.exposure_us,
                              lock_white_balance=args.lock_white_balance or locked or gains is not None,
                              colour_gains_rb=gains)
    if args.exposure_us is not None and not controls.lock_exposure:
        raise OptionError("--exposure-us needs --lock-exposure (the automatic exposure would override it)")
    um = getattr(args, "um_per_px", None)
    if profile is not None and um is not None and not for_calibration:
        profile = replace(profile, um_per_px=None, frame_size=None)  # a new scale: no frame-size check
    um_from = None
    if um is None and profile is not None and profile.um_per_px is not None:
        um, um_from = profile.um_per_px, f"the scale of profile {name(profile_path(args.profile))}"
    timeout = getattr(args, "camera_timeout", None)
    return CaptureSetup(camera=camera, source=source, mode=mode, controls=controls, profile=profile, um_per_px=um,
                        camera_timeout_s=CAMERA_TIMEOUT_S if timeout is None else timeout, um_per_px_from=um_from)


def say_granted(source, um_per_px: Optional[float], stream=None) -> None:
    """One line: the camera's granted mode and, with a scale, its field of view in mm."""
    granted = getattr(source, "granted", None)
    if granted is None:
        return
    text = f"{source.description}: {granted.describe()}"
    if granted.size is not None and um_per_px:
        w_mm, h_mm = field_of_view_mm(granted.width, granted.height, um_per_px)
        text += f"; field of view {w_mm:.2f} x {h_mm:.2f} mm at {um_per_px:g} um/px"
    print(text, file=stream or sys.stderr, flush=True)
