"""Microscope profiles: one small TOML file per microscope and objective.

A profile remembers what calibration found so a run needs only ``--profile NAME``:

    # ~/.config/idc-edge/profiles/olympus-10x.toml
    camera = "/dev/v4l/by-id/usb-Arducam_12MP-video-index0"

    [mode]
    width = 1920
    height = 1080
    fps = 30.0
    fourcc = "MJPG"

    [scale]
    um_per_px = 1.0125        # microns per pixel at this objective
    frame_width = 1920        # the frame size the scale was measured at
    frame_height = 1080
    spacing_um = 10.0         # the stage micrometer's tick spacing

    [white]
    gains_rgb = [1.08, 1.0, 0.93]
    glass_rgb = [224.0, 238.0, 258.0]
    target_rgb = [242.0, 238.0, 240.0]

    [exposure]
    clipped_fraction = 0.0
    uniformity = 0.93

Profiles live in ``$XDG_CONFIG_HOME/idc-edge/profiles/`` (default ``~/.config/idc-edge/profiles/``);
``--profile`` also takes a path to a ``.toml`` file. Reading uses ``tomllib`` (Python 3.11+) or
the ``tomli`` package on older Pythons; writing uses the small writer here (the profile is a
flat set of tables of numbers and strings), replacing the file atomically.
"""
from __future__ import annotations

import errno
import math
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

from .sources.modes import CameraMode
from .errors import IdcEdgeError, OptionError
from .fileio import lock_within, name as short_name, read_bytes, refuse_kernel_files, short, why, write_whole
from .validate import did_you_mean, implausible_um_per_px

try:  # Python 3.11+
    import tomllib as _toml
except ImportError:  # pragma: no cover - Python < 3.11 installs tomli (see pyproject.toml)
    import tomli as _toml  # type: ignore[no-redef]


class ProfileError(IdcEdgeError):
    """A profile is missing, unreadable or does not fit the camera it is used with."""


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")


def profiles_dir() -> Path:
    """``$XDG_CONFIG_HOME/idc-edge/profiles`` (``~/.config/idc-edge/profiles`` when unset)."""
    from .environment import xdg_dir

    return xdg_dir("XDG_CONFIG_HOME", ".config") / "idc-edge" / "profiles"  # the spec ignores relative values


def profile_path(name_or_path: Union[str, os.PathLike]) -> Path:
    """The file of a profile: a bare name maps into :func:`profiles_dir`, a path ending in ``.toml`` is used as is.

    Raises:
        ProfileError: the name has characters other than letters, digits and ``_ . + -``.
    """
    text = os.fspath(name_or_path)
    if isinstance(text, str) and "\0" in text:  # the OS takes no NUL in a name: saving raised a bare ValueError
        raise ProfileError(f"profile {short(text)} holds a NUL character, which no file name can: give the profile's "
                           "name or the path of its .toml file")
    if text.endswith(".toml"):
        return Path(text)
    if not _NAME.fullmatch(text):
        raise ProfileError(f"profile name {text!r} may use only letters, digits and _ . + - (at most 64 characters), "
                           "or give a path to a .toml file")
    return profiles_dir() / f"{text}.toml"


def folder_problem(folder: Path) -> Optional[str]:
    """Why ``folder`` cannot hold profiles although something is there, or None (a folder, or nothing yet).

    A symbolic link loop or a file in the folder's path was reported as "does not exist: make it with
    calibrate", and calibrating then failed with "File exists"."""
    import stat

    try:
        mode = os.stat(folder).st_mode
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "is a symbolic link that leads back to itself (a loop)"
        if e.errno == errno.ENOTDIR:
            return "lies under a file: a part of its path is a file, not a folder"
        if e.errno == errno.ENOENT:
            return None
        return why(e)
    except ValueError:
        return None
    return None if stat.S_ISDIR(mode) else "is a file, not a folder"


def _folder_error(target: Path, folder: Path, problem: str, verb: str) -> ProfileError:
    return ProfileError(f"cannot {verb} profile {short_name(target)}: its folder {short_name(folder)} {problem}; "
                        "remove or rename what is there (profiles are kept in $XDG_CONFIG_HOME/idc-edge/profiles, "
                        "~/.config/idc-edge/profiles by default), or give the path of a .toml file elsewhere")


def _floats3(value, what: str, path: Path) -> Optional[Tuple[float, float, float]]:
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise ProfileError(f"profile {str(path)!r}: {what} must be three numbers [R, G, B], got {short(value)}")
    return (float(value[0]), float(value[1]), float(value[2]))


def _levels(value, what: str, path: Path, top: float = 255.0) -> Optional[Tuple[float, float, float]]:
    """``white.target_rgb`` (the glass colour a run's drift check holds frames to): each channel above 0
    and at most 255, a camera's 8-bit level; ``white.glass_rgb`` (recorded, not used) above 0. A
    hand-edited target of 0 stopped the run with an error that named no profile, and 1e300 or 5 warned
    on every run that the lamp had drifted by thousands of per cent."""
    levels = _floats3(value, what, path)
    if levels is not None and not all(0.0 < v <= top for v in levels):
        within = "above 0 and at most 255" if top == 255.0 else "above 0"
        raise ProfileError(f"profile {short_name(path)}: {what} must be three levels {within} [R, G, B] (glass is "
                           f"bright), got {list(levels)!r:.80}: calibrate white again")
    return levels


def _gains(value, path: Path) -> Optional[Tuple[float, float, float]]:
    """``white.gains_rgb`` within what calibration can give: ``calibrate white`` refuses glass needing a
    gain above its limit (4), so a hand-edited 1e300 only clipped every frame to "too dark or clipped"."""
    from .colour import ExposureCheckOptions

    gains = _floats3(value, "white.gains_rgb", path)
    top = ExposureCheckOptions().max_gain
    if gains is not None and not all(1.0 / top <= g <= top for g in gains):
        raise ProfileError(f"profile {str(path)!r}: white.gains_rgb must be three numbers from {1 / top:g} to {top:g} "
                           f"[R, G, B], got {list(gains)!r:.80}: calibrate white again")
    return gains


@dataclass(frozen=True)
class Profile:
    """One microscope/objective: camera, mode, scale, white reference, exposure.

    Attributes:
        name: the profile's name (its file's stem).
        camera: what ``--camera`` takes (index, device path, ``picam:0``, a pipeline or URL), or None.
        mode: the camera mode to ask for.
        um_per_px: microns per pixel of frames of ``frame_size``; None until scale calibration.
        frame_size: (width, height) in pixels the scale was measured at.
        spacing_um: the micrometer's tick spacing used for the scale (µm).
        white_gains_rgb: per-channel gains (RGB) from white calibration, None until then.
        glass_rgb: the glass colour measured at white calibration (RGB, 0–255).
        target_rgb: the glass colour the gains aim for (RGB, 0–255).
        exposure: what the exposure check found (``clipped_fraction``, ``uniformity``) and, where
            the camera allows, the locked exposure settings.
    """

    name: str
    camera: Optional[str] = None
    mode: CameraMode = field(default_factory=CameraMode)
    um_per_px: Optional[float] = None
    frame_size: Optional[Tuple[int, int]] = None
    spacing_um: Optional[float] = None
    white_gains_rgb: Optional[Tuple[float, float, float]] = None
    glass_rgb: Optional[Tuple[float, float, float]] = None
    target_rgb: Optional[Tuple[float, float, float]] = None
    exposure: Dict[str, Any] = field(default_factory=dict)

    def with_scale(self, um_per_px: float, frame_size: Tuple[int, int], spacing_um: Optional[float] = None) -> "Profile":
        return replace(self, um_per_px=float(um_per_px), frame_size=(int(frame_size[0]), int(frame_size[1])),
                       spacing_um=spacing_um)

    def check_frame_size(self, width: int, height: int) -> None:
        """Refuse frames of another size than the scale was measured at.

        Raises:
            ProfileError: the profile has a scale and ``(width, height)`` differs from ``frame_size``.
        """
        if self.um_per_px is None or self.frame_size is None:
            return
        if (int(width), int(height)) != tuple(self.frame_size):
            fw, fh = self.frame_size
            raise ProfileError(
                f"frames are {width}x{height} but profile {self.name!r} measured {self.um_per_px:g} um/px on "
                f"{fw}x{fh} frames, so its scale would be wrong: ask the camera for size={fw}x{fh} "
                f"(its CameraMode) or measure the scale at this size (`idc-edge calibrate scale --profile "
                f"{self.name} ...`, or Profile.with_scale)", options=["size="])

    def to_toml_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        if self.camera is not None:
            out["camera"] = str(self.camera)
        mode = {k: v for k, v in (("width", self.mode.width), ("height", self.mode.height),
                                  ("fps", None if self.mode.fps is None else float(self.mode.fps)),
                                  ("fourcc", self.mode.fourcc)) if v is not None}
        if mode:
            out["mode"] = mode
        if self.um_per_px is not None:
            scale: Dict[str, Any] = {"um_per_px": float(self.um_per_px)}
            if self.frame_size is not None:
                scale["frame_width"], scale["frame_height"] = int(self.frame_size[0]), int(self.frame_size[1])
            if self.spacing_um is not None:
                scale["spacing_um"] = float(self.spacing_um)
            out["scale"] = scale
        white = {k: [float(x) for x in v] for k, v in (("gains_rgb", self.white_gains_rgb),
                                                        ("glass_rgb", self.glass_rgb),
                                                        ("target_rgb", self.target_rgb)) if v is not None}
        if white:
            out["white"] = white
        if self.exposure:
            out["exposure"] = dict(self.exposure)
        return out


#: Every key a profile may hold: top-level keys, and for each table the keys inside it. Anything
#: else is refused, so a mistyped key (``um_per_pix``) or a TOML file that is not a profile
#: (``pyproject.toml``) is an error, never silently ignored (and never overwritten by calibration).
SCHEMA: Dict[str, Tuple[str, ...]] = {
    "camera": (),
    "mode": ("width", "height", "fps", "fourcc"),
    "scale": ("um_per_px", "frame_width", "frame_height", "spacing_um"),
    "white": ("gains_rgb", "glass_rgb", "target_rgb"),
    "exposure": ("clipped_fraction", "uniformity", "locked"),
}


def _check_keys(data: Dict[str, Any], path: Path) -> None:
    """Refuse keys :data:`SCHEMA` does not know, naming the closest known one."""
    def unknown(key: str, known, where: str) -> ProfileError:
        hint = did_you_mean(key, known, "a profile")
        return ProfileError(f"profile {short_name(path)}: unknown key {short(key)}{where}{hint}; is this a profile "
                            "written by `idc-edge calibrate`?")

    for key, value in data.items():
        if key not in SCHEMA:
            raise unknown(key, SCHEMA, "")
        if SCHEMA[key] and isinstance(value, dict):
            for inner in value:
                if inner not in SCHEMA[key]:
                    raise unknown(inner, SCHEMA[key], f" in [{key}]")


def _from_toml(name: str, data: Dict[str, Any], path: Path) -> Profile:
    _check_keys(data, path)

    def table(key: str) -> Dict[str, Any]:
        value = data.get(key, {})
        if not isinstance(value, dict):
            raise ProfileError(f"profile {str(path)!r}: [{key}] must be a table")
        return value

    def number(tbl: Dict[str, Any], key: str, where: str, whole: bool = False):
        v = tbl.get(key)
        if v is None:
            return None
        ok = isinstance(v, int) if whole else isinstance(v, (int, float))
        if isinstance(v, bool) or not ok or not math.isfinite(v) or v <= 0:
            kind = "a whole number >= 1" if whole else "a number > 0"
            raise ProfileError(f"profile {str(path)!r}: {where}.{key} must be {kind}, got {v!r}")
        return v

    camera = data.get("camera")
    if camera is not None and not isinstance(camera, (str, int)):
        raise ProfileError(f"profile {str(path)!r}: camera must be a string, got {camera!r}")
    if isinstance(camera, str) and not camera.strip():  # reported as an empty camera option the user never gave
        raise ProfileError(f"profile {short_name(path)}: camera is empty: name the camera (an index such as 0, a "
                           "device path, picam:0, a pipeline or a stream URL) or delete the line")
    m, s, w = table("mode"), table("scale"), table("white")
    fourcc = m.get("fourcc")
    if fourcc is not None and not isinstance(fourcc, str):
        raise ProfileError(f"profile {str(path)!r}: mode.fourcc must be a string such as \"MJPG\", got {fourcc!r}")
    try:
        mode = CameraMode(number(m, "width", "mode", True), number(m, "height", "mode", True),
                          number(m, "fps", "mode"), fourcc)
    except OptionError as e:
        raise ProfileError(f"profile {str(path)!r}: {e}") from None
    fw, fh = number(s, "frame_width", "scale", True), number(s, "frame_height", "scale", True)
    from .sources.modes import MAX_SIDE_PX

    for key, side in (("frame_width", fw), ("frame_height", fh)):  # a camera mode's own limit
        if side is not None and side > MAX_SIDE_PX:
            # the run then asked for a camera size no camera has, and that its own size check refuses
            raise ProfileError(f"profile {short_name(path)}: scale.{key} must be at most {MAX_SIDE_PX} px (the frame "
                               f"size the scale was measured at), got {side}: calibrate scale again")
    um = number(s, "um_per_px", "scale")
    if um is not None and (bad := implausible_um_per_px(um)):  # it would reach the detector as if typed as --um-per-px
        raise ProfileError(f"profile {str(path)!r}: scale.um_per_px is {bad}; "
                           "calibrate scale again, giving the micrometer's tick spacing in µm")
    if um is not None and (fw is None or fh is None):
        raise ProfileError(f"profile {str(path)!r}: scale.um_per_px needs scale.frame_width and frame_height "
                           "(the frame size it was measured at)")
    exposure = table("exposure")
    for key, top in (("clipped_fraction", 1.0), ("uniformity", math.inf)):  # a fraction; corner over centre
        v = exposure.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= top
                              or not math.isfinite(v)):
            kind = "a number from 0 to 1" if top == 1.0 else "a number >= 0"
            raise ProfileError(f"profile {str(path)!r}: exposure.{key} must be {kind}, got {short(v)}")
    if not isinstance(exposure.get("locked", False), bool):  # "no" would read as true
        raise ProfileError(f"profile {str(path)!r}: exposure.locked must be true or false, got {short(exposure['locked'])}")
    return Profile(name=name, camera=None if camera is None else str(camera), mode=mode,
                   um_per_px=None if um is None else float(um),
                   frame_size=None if fw is None else (fw, fh), spacing_um=number(s, "spacing_um", "scale"),
                   white_gains_rgb=_gains(w.get("gains_rgb"), path),
                   glass_rgb=_levels(w.get("glass_rgb"), "white.glass_rgb", path, math.inf),
                   target_rgb=_levels(w.get("target_rgb"), "white.target_rgb", path),
                   exposure=dict(exposure))


#: the largest profile file read: ``calibrate`` writes a few hundred bytes, hand-edited comments included
#: one stays far below this
MAX_PROFILE_BYTES = 1 << 20


def load_profile(name_or_path: Union[str, os.PathLike]) -> Profile:
    """Read a profile by name (from :func:`profiles_dir`) or path.

    Raises:
        ProfileError: the file is missing, not TOML, or holds values of the wrong kind; the
            message names the file.
    """
    path = profile_path(name_or_path)
    if not os.path.lexists(path):
        if (problem := folder_problem(path.parent)) is not None:
            raise _folder_error(path, path.parent, problem, "read")
        try:
            os.lstat(path)
        except OSError as e:  # a name the file system cannot hold was "does not exist: make it with calibrate"
            if e.errno == errno.ENAMETOOLONG:
                raise ProfileError(f"cannot read profile {short_name(path)}: {why(e)}; give a shorter name") from None
        where = profiles_dir()
        known = sorted(p.stem for p in where.glob("*.toml")) if where.is_dir() else []
        raise ProfileError(f"profile {str(path)!r} does not exist: make it with `idc-edge calibrate white|scale "
                           f"--profile {path.stem} ...` (or save_profile)" + (f" (profiles here: {', '.join(known)})" if known else ""))
    # read as any other file: a regular file only (never a FIFO or /dev/zero), within the memory budget,
    # and no larger than a profile can be: parsed TOML takes ~25 times its text, so a 200 MB file (in the
    # budget) took 100 s and 5 GB before its one error line, past the memory of most boards
    try:
        size = os.stat(path).st_size
    except (OSError, ValueError):
        size = 0  # read_bytes says what is wrong with it
    raw = b"" if size > MAX_PROFILE_BYTES else read_bytes(path, "profile", ProfileError)
    if max(size, len(raw)) > MAX_PROFILE_BYTES:
        raise ProfileError(f"profile {short_name(path)} is {max(size, len(raw)):,} bytes, more than a profile can "
                           f"be ({MAX_PROFILE_BYTES // 1024} KiB; calibration writes under 1 KiB): is it a profile? "
                           "Fix it or delete it and calibrate again")
    try:
        data = _toml.loads(raw.decode("utf-8-sig"))  # Windows editors start UTF-8 files with a byte-order mark
    except UnicodeDecodeError:
        raise ProfileError(f"profile {short_name(path)} is not UTF-8 text (is it a profile?)") from None
    except _toml.TOMLDecodeError as e:
        raise ProfileError(f"profile {str(path)!r} is not valid TOML ({e}): fix it or delete it and calibrate again") from None
    except ValueError:  # a whole number of thousands of digits, past what Python converts
        raise ProfileError(f"profile {str(path)!r} holds a number too long to read (thousands of digits): fix it or "
                           "delete it and calibrate again") from None
    except RecursionError:  # arrays nested thousands deep
        raise ProfileError(f"profile {str(path)!r} is not a profile (values nested too deep to read): fix it or delete "
                           "it and calibrate again") from None
    return _from_toml(path.stem, data, path)


def load_or_new_profile(name_or_path: Union[str, os.PathLike]) -> Profile:
    """The profile if its file exists, else an empty one of that name (for calibration to fill)."""
    path = profile_path(name_or_path)
    # a link to a profile still to be made is followed (save_profile writes its target): lexists took the
    # link for the profile, and calibrating through it failed with "cannot read profile ...: it does not exist"
    dangling = os.path.islink(path) and not os.path.exists(path)
    return load_profile(path) if os.path.lexists(path) and not dangling else Profile(name=path.stem)


# -- writing --------------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"TOML has no place for {value!r} in a profile")
        return repr(value)
    if isinstance(value, str):
        escaped = []
        for ch in value:
            if ch in '"\\':
                escaped.append("\\" + ch)
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                escaped.append(f"\\u{ord(ch):04x}")
            else:
                escaped.append(ch)
        return '"' + "".join(escaped) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ValueError(f"cannot write a {type(value).__name__} into a profile")


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_value(name)


def dumps_toml(data: Dict[str, Any]) -> str:
    """TOML text of a dict of plain values and one level of tables (what a profile holds)."""
    lines = [f"{_key(k)} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{_key(k)}]"]
            for kk, vv in v.items():
                if isinstance(vv, dict):
                    raise ValueError(f"profile table [{k}] cannot hold the table {kk!r}")
                lines.append(f"{_key(kk)} = {_toml_value(vv)}")
    return "\n".join(["# idc-edge microscope profile (written by `idc-edge calibrate`)", *lines]) + "\n"


def check_profile(profile: Profile, path: Optional[Union[str, os.PathLike]] = None) -> None:
    """Refuse a :class:`Profile` that :func:`load_profile` would refuse as its file: every value goes
    through the same checks as a profile read from disk (a ``Profile`` made in code is not checked when
    made). ``path`` names it in messages (default: its name).

    Raises:
        ProfileError: naming the field, as for a profile file.
    """
    where = Path(os.fspath(path)) if path is not None else Path(str(profile.name))
    try:
        data = profile.to_toml_dict()
    except (TypeError, ValueError) as e:  # gains of text, a size of None ...
        raise ProfileError(f"profile {short_name(where)} holds a value of the wrong kind ({e}); a Profile holds "
                           "numbers and text as load_profile gives them") from None

    def finite(value, key):
        if isinstance(value, float) and not math.isfinite(value):
            raise ProfileError(f"profile {short_name(where)}: {key} is {value!r}, not a finite number")
        if isinstance(value, (list, tuple)):
            for v in value:
                finite(v, key)
        if isinstance(value, dict):
            for k, v in value.items():
                finite(v, f"{key}.{k}" if key else str(k))

    finite(data, "")
    try:
        text = dumps_toml(data)
    except ValueError as e:  # an exposure entry that is an object or a table
        raise ProfileError(f"profile {short_name(where)}: {e}") from None
    _from_toml(str(profile.name), _toml.loads(text), where)


def save_profile(profile: Profile, path: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Write ``profile`` (to ``path`` or its name's place in :func:`profiles_dir`), replacing the file atomically.

    A name's folder is made when missing; a ``.toml`` path's folder must exist (a mistyped folder
    is an error, not a new tree). A symbolic link is followed, so the file it points to is
    updated and the link kept; the file keeps its permissions (new ones get 0666 less the umask, usually ``0644``).

    Raises:
        ProfileError: the folder cannot be made or written, or the profile holds what
            :func:`load_profile` would refuse (:func:`check_profile`).
    """
    given = path if path is not None else profile.name
    target = profile_path(given)
    # what load_profile would refuse is never written: a scale of 1e308 was saved and its file then
    # refused at every run; nan or a gain of text raised a bare ValueError
    check_profile(profile, target)
    text = dumps_toml(profile.to_toml_dict())
    where = Path(os.path.realpath(target))
    # before the folder is made: on /proc or /sys (XDG_CONFIG_HOME=/proc) that failed as "it does not exist"
    refuse_kernel_files(str(where), "profile", ProfileError)
    if (problem := folder_problem(where.parent)) is not None:
        raise _folder_error(target, where.parent, problem, "write")
    try:
        if os.fspath(given).endswith(".toml"):
            if not where.parent.is_dir():
                raise ProfileError(f"cannot write profile {short_name(target)}: folder {short_name(where.parent)} "
                                   "does not exist")
        else:
            where.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ProfileError(f"cannot write profile {short_name(target)}: {why(e)}") from None
    write_whole(where, text.encode("utf-8"), "profile", error=ProfileError)  # whole or not at all, link and mode kept
    return target


#: seconds a calibration waits for another one saving into the same profiles folder
UPDATE_WAIT_S = 10.0


def update_profile(name_or_path: Union[str, os.PathLike], change: Callable[[Profile], Profile]) -> Tuple[Profile, Path]:
    """Apply ``change`` to the profile as it is on disk now (an empty one when it does not exist yet) and
    save the result, holding an exclusive lock (``flock``) on the profile's folder meanwhile.

    A calibration reads its profile when it starts and measures for seconds; saving what it read then
    with its own result dropped whatever another calibration of the same profile saved meanwhile (a
    white reference and a scale measured at once kept only the last one's). ``change`` should set only
    what was measured.

    Returns:
        (the profile saved, the file it was saved to).

    Raises:
        ProfileError: as :func:`load_profile` and :func:`save_profile`, or another process held the
            folder's lock for :data:`UPDATE_WAIT_S` seconds.
    """
    target = profile_path(name_or_path)
    folder = Path(os.path.realpath(target)).parent
    refuse_kernel_files(os.path.realpath(target), "profile", ProfileError)  # as save_profile
    if (problem := folder_problem(folder)) is not None:
        raise _folder_error(target, folder, problem, "write")
    if os.fspath(name_or_path).endswith(".toml"):
        if not folder.is_dir():  # a mistyped folder is an error, not a new tree (as save_profile)
            raise ProfileError(f"cannot write profile {short_name(target)}: folder {short_name(folder)} does not exist")
    else:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ProfileError(f"cannot write profile {short_name(target)}: {why(e)}") from None
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise ProfileError(f"cannot write profile {short_name(target)}: folder {short_name(folder)}: {why(e)}") from None
    try:
        if not lock_within(fd, UPDATE_WAIT_S):  # a file system without locks: updated unlocked
            raise ProfileError(f"cannot write profile {short_name(target)}: another process kept its folder "
                               f"locked for {UPDATE_WAIT_S:g} s (a calibration saving there?); try again")
        profile = change(load_or_new_profile(name_or_path))
        return profile, save_profile(profile, name_or_path)
    finally:
        os.close(fd)  # releases the lock
