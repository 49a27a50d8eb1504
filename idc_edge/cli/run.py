"""``idc-edge run``: stream a camera, video, image or data-set folder through the detector."""
from __future__ import annotations

import signal
import sys
import time
from typing import Optional

from ..errors import IdcEdgeError, OptionError
from .options import add_model_args, camera, number, positive_float, positive_int, whole_number

_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def add_parser(sub) -> None:
    run = sub.add_parser("run", help="stream a camera, video, image or data-set folder through the detector",
                         description="Classify every tissue patch of every frame and draw an IDC heat map.")
    src = run.add_mutually_exclusive_group(required=True)
    src.add_argument("--camera", type=camera, metavar="N|PATH",
                     help="camera index (/dev/videoN), or a device path or URL; /dev/v4l/by-id/... names the "
                          "same camera after it is re-plugged")
    src.add_argument("--source", metavar="PATH", help="video file, image, folder of images, or a folder in the "
                                                      "data set's layout (shown as a moving stage)")
    add_model_args(run)
    run.add_argument("--um-per-px", type=number("--um-per-px"), metavar="UM",
                     help="microns per pixel of the frames (default: the model's, no rescale)")
    run.add_argument("--stride", type=whole_number("--stride"), metavar="PX",
                     help="distance between patches in model pixels (default: one patch, no overlap)")
    run.add_argument("--no-mask", action="store_true", help="classify background patches too")
    run.add_argument("--no-reuse", action="store_true",
                     help="classify every tissue patch of every frame (default: a patch that did not change "
                          "keeps its score)")
    run.add_argument("--sequential", action="store_true",
                     help="capture, inference and drawing one after another on one thread (default: each on "
                          "its own thread, overlapping)")
    run.add_argument("--max-frames", type=positive_int("--max-frames"), metavar="N", help="stop after N frames")
    run.add_argument("--show", action="store_true", help="show the overlay in a window")
    run.add_argument("--save-video", metavar="OUT", help="write the overlay video (.mp4, .avi, .mkv)")
    run.add_argument("--record", metavar="OUT.jsonl", help="append one JSON line per frame (flushed to disk)")
    run.add_argument("--patient", action="append", metavar="ID", help="with a data-set folder: patients to show")
    run.add_argument("--camera-timeout", type=positive_float("--camera-timeout"), default=10.0, metavar="S",
                     help="give up after S seconds without camera frames (default 10)")
    run.add_argument("--quiet", action="store_true", help="no progress line")
    run.set_defaults(func=cmd_run)


def _check_gui() -> None:
    import cv2

    try:
        cv2.namedWindow("idc-edge", cv2.WINDOW_NORMAL)
    except cv2.error:
        raise OptionError("--show needs an OpenCV with a GUI, and the installed one is headless: "
                          "`pip uninstall opencv-python-headless && pip install opencv-python`, "
                          "or use --save-video instead") from None


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _close_all(closers: list) -> None:
    """Close in reverse order with Ctrl-C/SIGTERM/SIGHUP held off, so a second signal cannot leave
    a video without its index; one failing close does not stop the others."""
    held = {s: signal.getsignal(s) for s in (signal.SIGINT, *_STOP_SIGNALS)}
    for s in held:
        signal.signal(s, signal.SIG_IGN)
    try:
        for c in reversed(closers):
            try:
                c.close()
            except Exception as e:  # report, keep closing the rest
                print(f"idc-edge: warning: closing {type(c).__name__} failed: {e}", file=sys.stderr)
    finally:
        for s, handler in held.items():
            signal.signal(s, handler)


def cmd_run(args) -> int:
    import cv2

    from ..detector import Detector, DetectorOptions
    from ..overlay import draw_overlay
    from ..record import JsonlRecorder, VideoRecorder
    from ..sources import CameraSource, open_source
    from ..threads import ThreadedStream

    options = DetectorOptions(model_path=args.model, um_per_px=args.um_per_px, stride=args.stride,
                              threshold=args.threshold, num_threads=args.threads, tissue_mask=not args.no_mask,
                              reuse=not args.no_reuse)
    if args.show:
        _check_gui()
    previous = {s: signal.signal(s, _raise_interrupt) for s in _STOP_SIGNALS}  # finish cleanly, as on Ctrl-C
    closers = []
    frames = 0
    started = time.monotonic()
    source = recorder = None
    streaming = False
    failure: Optional[IdcEdgeError] = None
    try:
        detector = Detector(options)
        closers.append(detector)
        if args.camera is not None:
            source = CameraSource(args.camera, lost_timeout_s=args.camera_timeout)
        else:
            source = open_source(args.source, um_per_px=args.um_per_px, patients=args.patient)
        closers.append(source)
        recorder = JsonlRecorder(args.record) if args.record else None
        if recorder:
            closers.append(recorder)
        video = VideoRecorder(args.save_video, fps=getattr(source, "fps", 0.0) or 30.0) if args.save_video else None
        if video:
            closers.append(video)
        draw = bool(video or args.show)
        fps = None
        last_report = started
        if args.sequential:
            results = detector.stream(source, keep_image=draw)
        else:
            results = ThreadedStream(detector, source, keep_image=draw)
            closers.append(results)  # closed first: stops its threads before the source and detector
        streaming = True
        for result in results:
            frames += 1
            now = time.monotonic()
            fps = frames / max(now - started, 1e-9)
            if recorder:
                recorder.write(result.to_record())
            if draw:
                image = draw_overlay(result.image, result, fps=fps)
                if video:
                    video.write(image)
                if args.show:
                    cv2.imshow("idc-edge", image)
                    if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                        break
            if not args.quiet and now - last_report >= 1.0:
                last_report = now
                print(f"frame {result.index}: IDC {100 * result.idc_fraction:.1f} % of tissue, "
                      f"tissue {100 * result.tissue_fraction:.1f} %, {fps:.1f} fps", file=sys.stderr)
            if args.max_frames and frames >= args.max_frames:
                break
    except KeyboardInterrupt:
        print("idc-edge: interrupted; results so far are saved", file=sys.stderr)
    except IdcEdgeError as e:
        if not streaming:
            raise
        failure = e  # camera lost, disk full: report after everything recorded is finalised
    finally:
        _close_all(closers)
        for s, handler in previous.items():
            signal.signal(s, handler)
    elapsed = time.monotonic() - started
    skipped = source.skipped if source is not None else 0
    print(f"{frames} frame(s) in {elapsed:.1f} s ({frames / max(elapsed, 1e-9):.1f} fps)"
          + (f", {skipped} {getattr(source, 'skipped_what', 'unusable frame(s)')} skipped" if skipped else "")
          + (f"; {recorder.lines} result(s) in {args.record}" if recorder else "")
          + (f"; video in {args.save_video}" if args.save_video else ""), file=sys.stderr)
    if failure is not None:
        raise failure
    return 0
