"""``idc-edge cameras [--json]``: the cameras on this device and how to name them in ``--camera``."""
from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("cameras", help="list the cameras on this device (V4L2 with their modes, Picamera2)",
                       description="List V4L2 cameras (name, --camera index, stable by-id path, the modes the driver "
                                   "offers) and Raspberry Pi CSI cameras (Picamera2).")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_cameras)


def cmd_cameras(args) -> int:
    from ..sources.discover import list_picameras, list_v4l2
    from ..sources.gstreamer import opencv_has_gstreamer

    v4l2 = list_v4l2()
    pi = list_picameras()
    if args.json:
        print(json.dumps({"v4l2": [d.to_dict() for d in v4l2],
                          "picamera2": {"available": pi.available, "cameras": list(pi.cameras), "note": pi.note},
                          "opencv_gstreamer": opencv_has_gstreamer()}))
        return 0
    if not v4l2:
        print("V4L2: no cameras (/sys/class/video4linux lists none)")
    for d in v4l2:
        print(f"--camera {d.index}   {d.name}   ({d.path})")
        for link in d.by_id:
            print(f"    stable name: --camera {link}")
        if d.modes:
            print(f"    modes ({d.modes_from}):")
            for m in d.modes:
                print(f"      {_mode_words(m)}")
        else:
            print("    modes: unknown (install v4l-utils for v4l2-ctl)")
    if pi.available:
        if not pi.cameras:
            print("Picamera2: no cameras" + (f" ({pi.note})" if pi.note else ""))
        for i, cam in enumerate(pi.cameras):
            print(f"--camera picam:{cam.get('Num', i)}   {cam.get('Model', '?')}   {cam.get('Id', '')}")
            for m in cam.get("modes", []):
                print(f"      --size {m['width']}x{m['height']}   up to {m['fps']:g} fps   ({m['format']}, "
                      f"{m['bit_depth']}-bit sensor mode)")
    else:
        print(f"Picamera2: {pi.note}")
    print("GStreamer pipelines and jetson:N: " + ("available" if opencv_has_gstreamer() else
                                                 "not in this OpenCV build (see the README's Devices section)"))
    return 0


def _mode_words(m) -> str:
    """A V4L2 mode as the ``--fourcc``/``--size`` words that ask for it, with its range of sizes and rates."""
    text = f"--fourcc {m.fourcc} --size {m.width}x{m.height}"
    if m.min_size:
        text += f"   (any size from {m.min_size[0]}x{m.min_size[1]} to {m.width}x{m.height}" + (
            f" in steps of {m.step[0]}x{m.step[1]})" if m.step and m.step != (1, 1) else ")")
    if m.fps:
        text += "   fps " + ", ".join(f"{r:g}" for r in m.fps)
    return text
