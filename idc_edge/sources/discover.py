"""Which cameras this device has: V4L2 devices (names, stable by-id paths, modes) and Picamera2 cameras.

V4L2 devices are read from ``/sys/class/video4linux`` (a USB camera shows up as two nodes: the
capture node, ``index`` 0, and a metadata node, which is skipped). Their modes come from
``v4l2-ctl --list-formats-ext`` where it is installed (Debian package ``v4l-utils``); otherwise
OpenCV is asked for the mode the device opens in, which is all it can say. Raspberry Pi CSI
cameras are listed through Picamera2's ``global_camera_info()`` where Picamera2 is installed.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

_FORMAT = re.compile(r"\[\d+\]:\s*'(.{4})'")
_SIZE = re.compile(r"Size:\s*\w+\s+(\d+)x(\d+)(?:\s*-\s*(\d+)x(\d+)(?:\s+with\s+step\s+(\d+)/(\d+))?)?")
_FPS = re.compile(r"\(([\d.]+)\s*fps\)")


@dataclass(frozen=True)
class V4l2Mode:
    """One pixel format and size a device offers, with its frame rates (frames per second).

    A driver that takes any size in a range (``Size: Stepwise 32x32 - 2592x1944 with step 2/2`` or
    ``Continuous``: a Raspberry Pi camera through its V4L2 driver, many capture bridges) is one mode of
    its largest size, ``width`` × ``height``, with ``min_size`` its smallest and ``step`` the steps
    between (1×1 for a continuous range).
    """

    fourcc: str
    width: int
    height: int
    fps: tuple = ()
    min_size: Optional[tuple] = None
    step: Optional[tuple] = None


@dataclass(frozen=True)
class V4l2Device:
    """A V4L2 capture device.

    Attributes:
        index: N of ``/dev/videoN`` (what ``camera=N`` takes).
        path: ``/dev/videoN``.
        name: the driver's name for it.
        by_id: stable ``/dev/v4l/by-id/...`` paths that point to it (survive re-plugging).
        modes: what it offers, where known.
        modes_from: ``v4l2-ctl``, ``opencv (current mode only)`` or ``unknown``.
    """

    index: int
    path: str
    name: str
    by_id: tuple = ()
    modes: tuple = ()
    modes_from: str = "unknown"

    def to_dict(self) -> dict:
        return asdict(self)


def parse_v4l2_formats(text: str) -> list[V4l2Mode]:
    """The modes in ``v4l2-ctl --list-formats-ext`` output (discrete sizes, and a range of sizes as one
    mode of its largest size: see :class:`V4l2Mode`; rates in fps). A range was listed as its smallest
    size alone (``Stepwise 32x32 - 2592x1944``: a camera "offering" 32x32 px only)."""
    modes: list[V4l2Mode] = []
    fourcc, size, rates, smallest, step = None, None, [], None, None

    def flush():
        if fourcc and size:
            modes.append(V4l2Mode(fourcc, size[0], size[1], tuple(rates), smallest, step))

    for line in text.splitlines():
        m = _FORMAT.search(line)
        if m:
            flush()
            fourcc, size, rates = m.group(1).strip(), None, []
            continue
        m = _SIZE.search(line)
        if m:
            flush()
            size, rates, smallest, step = (int(m.group(1)), int(m.group(2))), [], None, None
            if m.group(3):  # a range: its largest size, from its smallest
                smallest, size = size, (int(m.group(3)), int(m.group(4)))
                step = (int(m.group(5)), int(m.group(6))) if m.group(5) else (1, 1)
            continue
        m = _FPS.search(line)
        if m and size:
            rates.append(float(m.group(1)))
    flush()
    return modes


def _v4l2_ctl_modes(path: str) -> Optional[list[V4l2Mode]]:
    tool = shutil.which("v4l2-ctl")
    if not tool:
        return None
    try:
        out = subprocess.run([tool, "--list-formats-ext", "-d", path], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_v4l2_formats(out.stdout) if out.returncode == 0 else None


def _opencv_mode(index: int) -> Optional[list[V4l2Mode]]:
    import cv2

    from .modes import granted_mode

    cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
    try:
        if not cap.isOpened():
            return None
        g = granted_mode(cap)
        if g.size is None:
            return None
        return [V4l2Mode(g.fourcc or "?", g.width, g.height, (g.fps,) if g.fps else ())]
    finally:
        cap.release()


def list_v4l2(sys_root: str = "/sys/class/video4linux", by_id_dir: str = "/dev/v4l/by-id",
              probe: Optional[Callable[[str, int], tuple]] = None) -> list[V4l2Device]:
    """The V4L2 capture devices, by index.

    Args:
        sys_root: where the kernel lists video devices.
        by_id_dir: where udev keeps stable names.
        probe: ``(path, index) -> (modes, modes_from)``; default ``v4l2-ctl``, else OpenCV.
    """
    root = Path(sys_root)
    if not root.is_dir():
        return []
    links: dict[str, list[str]] = {}
    if os.path.isdir(by_id_dir):
        for entry in sorted(os.listdir(by_id_dir)):
            full = os.path.join(by_id_dir, entry)
            links.setdefault(os.path.basename(os.path.realpath(full)), []).append(full)
    devices = []
    for node in sorted(root.iterdir(), key=lambda p: (len(p.name), p.name)):
        m = re.fullmatch(r"video(\d+)", node.name)
        if not m:
            continue
        try:
            if (node / "index").is_file() and (node / "index").read_text().strip() not in ("", "0"):
                continue  # a second node of the same camera (metadata), not a capture device
            # the driver's name is cut to 31 bytes, which can end inside a character of a name that is not
            # ASCII (a camera named in Chinese): the cut character is shown as a replacement, never a crash
            name = ((node / "name").read_bytes().decode("utf-8", "replace").strip() if (node / "name").is_file()
                    else node.name)
        except OSError:
            continue
        index, path = int(m.group(1)), f"/dev/{node.name}"
        if probe is not None:
            modes, source = probe(path, index)
        else:
            modes = _v4l2_ctl_modes(path)
            source = "v4l2-ctl"
            if modes is None:
                modes, source = _opencv_mode(index), "opencv (current mode only)"
        devices.append(V4l2Device(index, path, name, tuple(links.get(node.name, ())), tuple(modes or ()),
                                  source if modes else "unknown"))
    return devices


@dataclass(frozen=True)
class PicameraList:
    """Picamera2's cameras, or why none can be listed.

    Attributes:
        available: Picamera2 could be imported.
        cameras: ``global_camera_info()`` entries (``Model``, ``Location``, ``Id``, ``Num``...).
        note: what to do when Picamera2 is missing.
    """

    available: bool
    cameras: tuple = ()
    note: str = ""


def list_picameras(module=None) -> PicameraList:
    """Raspberry Pi CSI cameras through Picamera2 (``module`` for a stand-in; imported when None)."""
    from ..errors import SourceError
    from .picamera import import_picamera2

    try:
        picamera2 = module or import_picamera2()
    except SourceError as e:
        return PicameraList(False, (), str(e))
    try:
        info = picamera2.Picamera2.global_camera_info()
    except Exception as e:  # libcamera not running, no permission
        return PicameraList(True, (), f"Picamera2 could not list cameras: {e}")
    cams = []
    for num, c in enumerate(info):
        entry = {str(k): (v if isinstance(v, (int, float, str)) else str(v)) for k, v in dict(c).items()}
        entry["modes"] = _picamera_modes(picamera2, int(entry.get("Num", num)))
        cams.append(entry)
    return PicameraList(True, tuple(cams))


def _picamera_modes(picamera2, num: int) -> list:
    """The sensor modes Picamera2 reports for camera ``num`` (size, fps, format, bit depth); [] when
    the camera cannot be opened (another program has it)."""
    try:
        cam = picamera2.Picamera2(num)
    except Exception:
        return []
    try:
        modes = list(getattr(cam, "sensor_modes", []) or [])
    except Exception:
        modes = []
    finally:
        try:
            cam.close()
        except Exception:
            pass
    out = []
    for m in modes:
        size = m.get("size") or (0, 0)
        out.append({"width": int(size[0]), "height": int(size[1]), "fps": float(m.get("fps") or 0.0),
                    "format": str(m.get("format", "")), "bit_depth": int(m.get("bit_depth") or 0)})
    return out
