"""GStreamer pipelines as camera sources: any pipeline ending in ``appsink``, and Jetson CSI cameras.

OpenCV reads a GStreamer pipeline only when it was built with GStreamer; the pip wheels are not.
Debian/Ubuntu's ``python3-opencv`` and JetPack's OpenCV are. Without it, opening a pipeline
is a :class:`~idc_edge.errors.SourceError` that says how to get such an OpenCV, instead of a
misleading "no camera".
"""
from __future__ import annotations

import functools
import re
from typing import Optional

from ..errors import SourceError
from .modes import CameraControls, CameraMode

NO_GSTREAMER = ("this OpenCV ({version}) was built without GStreamer, which {what} needs: install one that has it "
                "(Debian/Ubuntu/Raspberry Pi OS: `sudo apt install python3-opencv gstreamer1.0-plugins-good` and make "
                "the virtual environment with `python3 -m venv --system-site-packages`, then `pip uninstall "
                "opencv-python-headless`; Jetson: JetPack's own OpenCV, the same way)")


@functools.lru_cache(maxsize=1)
def opencv_has_gstreamer() -> bool:
    """True when this OpenCV build reads GStreamer pipelines."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def require_gstreamer(what: str) -> None:
    """Raise :class:`SourceError` naming ``what`` when this OpenCV cannot read GStreamer pipelines."""
    import cv2

    if not opencv_has_gstreamer():
        raise SourceError(NO_GSTREAMER.format(version=cv2.__version__, what=what))


def looks_like_pipeline(text: str) -> bool:
    """A GStreamer pipeline description: elements joined by ``!`` (e.g. ``v4l2src ! ... ! appsink``)."""
    return "!" in text and bool(re.match(r"^\s*[a-z][a-z0-9_-]*", text))


def with_appsink(pipeline: str) -> str:
    """``pipeline`` ending in an ``appsink`` that keeps only the newest BGR frame (added when missing)."""
    text = pipeline.strip().rstrip("!").strip()
    if re.search(r"(^|!)\s*appsink\b", text):
        return text
    return f"{text} ! videoconvert ! video/x-raw,format=BGR ! appsink drop=true max-buffers=1 sync=false"


def jetson_pipeline(sensor_id: int = 0, mode: CameraMode = CameraMode(),
                    controls: CameraControls = CameraControls()) -> str:
    """The ``nvarguscamerasrc`` pipeline of a Jetson CSI camera (sensor ``sensor_id``) delivering BGR.

    The size and frame rate are asked in the NVMM caps (default 1920x1080 at 30 fps); AE and AWB
    locks map to ``aelock``/``awblock``, and a locked white balance with no gains to ``wbmode=0``.
    """
    width, height = mode.size or (1920, 1080)
    fps = mode.fps or 30
    num, den = (int(round(fps)), 1) if abs(fps - round(fps)) < 1e-6 else (int(round(fps * 1000)), 1000)
    props = [f"sensor-id={int(sensor_id)}"]
    if controls.lock_exposure:
        props.append("aelock=true")
        if controls.exposure_us is not None:
            ns = int(round(controls.exposure_us * 1000))
            props.append(f'exposuretimerange="{ns} {ns}"')
        if controls.gain is not None:
            props.append(f'gainrange="{controls.gain:g} {controls.gain:g}"')
    if controls.lock_white_balance:
        props.append("awblock=true")
    return (f"nvarguscamerasrc {' '.join(props)} ! "
            f"video/x-raw(memory:NVMM),width={width},height={height},framerate={num}/{den},format=NV12 ! "
            "nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
            "appsink drop=true max-buffers=1 sync=false")


def gstreamer_capture(pipeline: str, what: Optional[str] = None):
    """``cv2.VideoCapture`` on a pipeline through OpenCV's GStreamer backend (checked first)."""
    import cv2

    require_gstreamer(what or "a GStreamer pipeline")
    return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
