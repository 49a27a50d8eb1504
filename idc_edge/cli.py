"""The ``idc-edge`` command line: run, classify, evaluate, info, bench.

Every error a user can cause is printed as one line ``idc-edge: error: ...`` naming the
problem and the fix, with exit code 2 and no traceback. Exit codes: 0 done (``run`` also after
Ctrl-C, SIGTERM or SIGHUP: everything recorded is finalised), 2 bad input or a fault that stops
the run (bad model, option or source, disk full), 3 the camera was lost mid-run and did not
come back within ``--camera-timeout`` (results up to then are saved), 130 other commands
interrupted. Warnings (skipped frames or patch files, a camera that drops out) are lines
``idc-edge: warning: ...``.
"""
from __future__ import annotations

import argparse
import csv
import difflib
import json
import logging
import math
import os
import re
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import Optional, Sequence

from . import __version__
from .errors import CameraLostError, IdcEdgeError, OptionError, SourceError

EXIT_USAGE = 2
EXIT_CAMERA_LOST = 3
_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class UsageError(IdcEdgeError):
    """The command line itself is wrong (unknown option, bad value)."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` with a did-you-mean hint instead of exiting, and
    takes no abbreviated options (``--strid`` is an error, not ``--stride``).

    A mistyped option is named first even when argparse would complain about something else
    (``run --sourc x`` is "unknown option --sourc (did you mean --source?)", not "one of
    --camera --source is required"), and hints come from the subcommand's own options only.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._seen: list[str] = []

    def parse_known_args(self, args=None, namespace=None):
        self._seen = [str(a) for a in (sys.argv[1:] if args is None else args)]
        return super().parse_known_args(args, namespace)

    def _options(self) -> list[str]:
        return [o for a in self._actions for o in a.option_strings]

    def _command(self) -> "Optional[_Parser]":
        """The subcommand's parser named in the arguments seen, if any."""
        for action in self._subparsers._group_actions if self._subparsers else ():
            for token in self._seen:
                if not token.startswith("-") and token in getattr(action, "choices", {}):
                    return action.choices[token]
        return None

    def _unknown_option(self, parser: "_Parser") -> tuple[Optional[str], str]:
        """(first option-like argument ``parser`` does not know, did-you-mean hint)."""
        known = set(parser._options()) | set(self._options())
        for token in self._seen:
            if token == "--":
                break
            name = token.split("=", 1)[0]
            if not token.startswith("-") or re.match(r"^-\d", token) or name in known:
                continue
            close = difflib.get_close_matches(name, sorted(parser._options()), n=1, cutoff=0.6)
            return name, f" (did you mean {close[0]}?)" if close else ""
        return None, ""

    def error(self, message: str):
        target = (self._command() or self) if "unrecognized arguments" in message else self
        unknown, hint = self._unknown_option(target)
        if unknown and not message.startswith("argument "):
            message = f"unknown option {unknown}{hint}"  # the typo is the cause of whatever else broke
        m = re.search(r"invalid choice: '([^']+)'", message)
        if m and self._subparsers:
            names = [n for a in self._subparsers._group_actions for n in getattr(a, "choices", {})]
            close = difflib.get_close_matches(m.group(1), names, n=1, cutoff=0.5)
            if close:
                message += f" (did you mean {close[0]}?)"
        raise UsageError(f"{message}; see `{target.prog} --help`")


def _positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {value}")
        return value
    return parse


def _positive_float(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text}")
        return value
    return parse


def _camera(text: str):
    """``--camera``: an index (digits) or a device path / capture URL."""
    return int(text) if text.strip().isdigit() else text


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"threshold must be a number between 0 and 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"threshold must be between 0 and 1, got {text}")
    return value


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH", help="a .tflite model with its .json sidecar (default: the shipped int8 model)")
    p.add_argument("--threshold", type=_probability, help="decision threshold 0-1 (default: the model's sidecar)")
    p.add_argument("--threads", type=_positive_int("--threads"), default=1, help="interpreter threads (default 1)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="idc-edge", description="Live IDC detection on breast histology, on the device.")
    parser.add_argument("--version", action="version", version=f"idc-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser("run", help="stream a camera, video, image or data-set folder through the detector",
                         description="Classify every tissue patch of every frame and draw an IDC heat map.")
    src = run.add_mutually_exclusive_group(required=True)
    src.add_argument("--camera", type=_camera, metavar="N|PATH",
                     help="camera index (/dev/videoN), or a device path or URL; /dev/v4l/by-id/... names the "
                          "same camera after it is re-plugged")
    src.add_argument("--source", metavar="PATH", help="video file, image, folder of images, or a folder in the "
                                                      "data set's layout (shown as a moving stage)")
    _model_args(run)
    run.add_argument("--um-per-px", type=_positive_float("--um-per-px"), metavar="UM",
                     help="microns per pixel of the frames (default: the model's, no rescale)")
    run.add_argument("--stride", type=_positive_int("--stride"), metavar="PX",
                     help="distance between patches in model pixels (default: one patch, no overlap)")
    run.add_argument("--no-mask", action="store_true", help="classify background patches too")
    run.add_argument("--no-reuse", action="store_true",
                     help="classify every tissue patch of every frame (default: a patch that did not change "
                          "keeps its score)")
    run.add_argument("--sequential", action="store_true",
                     help="capture, inference and drawing one after another on one thread (default: each on "
                          "its own thread, overlapping)")
    run.add_argument("--max-frames", type=_positive_int("--max-frames"), metavar="N", help="stop after N frames")
    run.add_argument("--show", action="store_true", help="show the overlay in a window")
    run.add_argument("--save-video", metavar="OUT", help="write the overlay video (.mp4, .avi, .mkv)")
    run.add_argument("--record", metavar="OUT.jsonl", help="append one JSON line per frame (flushed to disk)")
    run.add_argument("--patient", action="append", metavar="ID", help="with a data-set folder: patients to show")
    run.add_argument("--camera-timeout", type=_positive_float("--camera-timeout"), default=10.0, metavar="S",
                     help="give up after S seconds without camera frames (default 10)")
    run.add_argument("--quiet", action="store_true", help="no progress line")
    run.set_defaults(func=cmd_run)

    cls = sub.add_parser("classify", help="patch images or folders -> CSV of IDC probabilities")
    cls.add_argument("paths", nargs="+", metavar="PATH", help="patch images (<= model patch size) or folders of them")
    _model_args(cls)
    cls.add_argument("--out", metavar="CSV", help="write the CSV here (default: standard output)")
    cls.add_argument("--quiet", action="store_true", help="no progress bar")
    cls.set_defaults(func=cmd_classify)

    ev = sub.add_parser("evaluate", help="accuracy on labelled patches in the data set's layout")
    ev.add_argument("data_dir", metavar="DATA_DIR", help="folder of <patient>/<0|1>/*.png (or one patient's folder)")
    _model_args(ev)
    ev.add_argument("--patients", nargs="+", metavar="ID", help="evaluate only these patients")
    ev.add_argument("--validation", action="store_true",
                    help="evaluate only the literature's validation patients present in DATA_DIR")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    ev.set_defaults(func=cmd_evaluate)

    info = sub.add_parser("info", help="backend, versions, model and its sidecar")
    info.add_argument("--model", metavar="PATH", help="describe this model instead of the shipped one")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    bench = sub.add_parser("bench", help="measure speed on this device: patch and frame latency, reuse, start-up",
                           description="Time the model and the whole pipeline on this device with frames made "
                                       "here (no data needed) and print tables; ratios are measured interleaved.")
    bench.add_argument("--model", metavar="PATH",
                       help="int8 model to time, with its float32 twin from the sidecar (default: the shipped one)")
    bench.add_argument("--quick", action="store_true", help="fewer frame sizes and rounds (about half the time)")
    bench.add_argument("--threads", type=_positive_int("--threads"), metavar="N",
                       help="the 'all threads' setting of the patch latency (default: the CPU count)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.set_defaults(func=cmd_bench)
    return parser


# -- run ------------------------------------------------------------------------------------

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

    from .detector import Detector, DetectorOptions
    from .overlay import draw_overlay
    from .pipeline import ThreadedStream
    from .record import JsonlRecorder, VideoRecorder
    from .sources import CameraSource, open_source

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


# -- classify -------------------------------------------------------------------------------

def _patch_files(paths: Sequence[str]) -> list[Path]:
    from .sources import IMAGE_SUFFIXES

    files: list[Path] = []
    for text in paths:
        p = Path(text)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
            if not found:
                raise SourceError(f"folder {text!r} has no images")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise SourceError(f"{text!r} does not exist; pass patch images or folders of them")
    return files


def cmd_classify(args) -> int:
    import numpy as np

    from .classifier import PatchClassifier
    from .dataset import parse_patch_path, read_patch_rgb
    from .errors import DatasetError
    from .progress import Progress

    files = _patch_files(args.paths)
    with PatchClassifier(args.model, num_threads=args.threads) as clf:
        threshold = clf.spec.threshold if args.threshold is None else args.threshold
        size = clf.spec.patch_size_px
        out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout
        progress = Progress("classify", enabled=None if not args.quiet else False)
        skipped = []
        try:
            writer = csv.writer(out)
            writer.writerow(["path", "patient", "label", "probability", "idc"])
            for start in range(0, len(files), 512):
                batch, kept = [], []
                for f in files[start:start + 512]:
                    try:
                        batch.append(read_patch_rgb(f, size))
                        kept.append(f)
                    except SourceError:
                        skipped.append(f)
                if batch:
                    probs = clf.predict(np.stack(batch))
                    for f, prob in zip(kept, probs):
                        try:
                            rec = parse_patch_path(f)
                            patient, label = rec.patient, rec.label
                        except DatasetError:
                            patient, label = "", ""
                        writer.writerow([str(f), patient, label, f"{prob:.6f}", int(prob >= threshold)])
                progress(min(start + 512, len(files)), len(files))
        finally:
            if out is not sys.stdout:
                out.close()
    if skipped:
        print(f"idc-edge: warning: skipped {len(skipped)} unreadable image(s) (corrupt or not images), "
              f"e.g. {skipped[0]}", file=sys.stderr)
    return 0


# -- evaluate -------------------------------------------------------------------------------

def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def cmd_evaluate(args) -> int:
    from .classifier import PatchClassifier
    from .dataset import VALIDATION_PATIENTS
    from .evaluate import evaluate_folder
    from .progress import Progress

    patients = args.patients
    if args.validation:
        patients = sorted(set(patients or VALIDATION_PATIENTS) & VALIDATION_PATIENTS)
    with PatchClassifier(args.model, num_threads=args.threads) as clf:
        ev = evaluate_folder(clf, args.data_dir, args.threshold, patients,
                             progress=Progress("evaluate", enabled=False if (args.quiet or args.json) else None))
    summary = ev.summary()
    if ev.skipped:
        print(f"idc-edge: warning: skipped {len(ev.skipped)} unreadable patch image(s) (corrupt or not images), "
              f"e.g. {ev.skipped[0]}", file=sys.stderr)
    if args.json:
        print(json.dumps(_json_safe(summary)))
        return 0
    m = ev.metrics
    (tn, fp), (fn, tp) = m.confusion
    print(f"{m.n_patches} patches of {ev.n_patients} patient(s), threshold {m.threshold:.3f}"
          + (f", {len(ev.skipped)} unreadable skipped" if ev.skipped else ""))
    for name in ("accuracy", "balanced_accuracy", "recall_0", "recall_1", "precision_1", "f1_1", "roc_auc"):
        print(f"  {name:<18} {getattr(m, name):.4f}")
    print(f"  confusion          [[tn {tn}, fp {fp}], [fn {fn}, tp {tp}]]")
    print("per patient (patches, accuracy, balanced accuracy, recall 0, recall 1):")
    for p, pm in ev.per_patient.items():
        print(f"  {p:<8} {pm.n_patches:6d}  {pm.accuracy:.3f}  {pm.balanced_accuracy:.3f}  "
              f"{pm.recall_0:.3f}  {pm.recall_1:.3f}")
    return 0


# -- info -----------------------------------------------------------------------------------

def describe(model: Optional[str] = None) -> dict:
    """What ``idc-edge info --json`` prints: backend, versions, model path and sidecar."""
    import cv2
    import numpy as np

    from .backend import get_backend
    from .classifier import PatchClassifier

    backend = get_backend()
    with PatchClassifier(model) as clf:
        spec = clf.spec.to_json()
        model_info = {
            "path": str(clf.model_path), "size_bytes": clf.model_path.stat().st_size,
            "shipped_default": model is None,
            "input": {"dtype": str(clf.input_format.dtype), "scale": clf.input_format.scale,
                      "zero_point": clf.input_format.zero_point},
            "output": {"dtype": str(clf.output_format.dtype), "scale": clf.output_format.scale,
                       "zero_point": clf.output_format.zero_point},
            "sidecar": spec,
        }
    return {"idc_edge": __version__, "python": sys.version.split()[0], "numpy": np.__version__,
            "opencv": cv2.__version__, "backend": {"name": backend.name, "version": backend.version},
            "model": model_info}


def cmd_info(args) -> int:
    info = describe(args.model)
    if args.json:
        print(json.dumps(_json_safe(info)))
        return 0
    m = info["model"]
    sc = m["sidecar"]
    prov = sc.get("provenance", {})
    print(f"idc-edge {info['idc_edge']} (Python {info['python']}, numpy {info['numpy']}, OpenCV {info['opencv']})")
    print(f"backend   {info['backend']['name']} {info['backend']['version']}")
    print(f"model     {m['path']} ({m['size_bytes'] / 1024:.0f} KB){'  [shipped default]' if m['shipped_default'] else ''}")
    print(f"          input {m['input']['dtype']} {sc['patch_size_px']}x{sc['patch_size_px']} {sc['channel_order']}, "
          f"{sc['um_per_px']} um/px, threshold {sc['threshold']:.3f}")
    if prov.get("summary"):
        print(f"          {prov['summary']}")
    if prov.get("architecture") or prov.get("variant"):
        print(f"made      {prov.get('architecture', '?')} CNN, {prov.get('variant', '?')}"
              + (f", shipped {prov['shipped'][:10]}" if prov.get("shipped") else ""))
    data = prov.get("data")
    if isinstance(data, dict) and "train_patients" in data:
        print(f"data      {data.get('train_patients')} training / {data.get('val_patients')} validation patients "
              f"({data.get('split', 'patient split')})")
    for label, key in (("validation", "validation_metrics"), ("  float32", "validation_metrics_float")):
        vm = prov.get(key)
        if isinstance(vm, dict) and "balanced_accuracy" in vm:
            print(f"{label:<9} balanced accuracy {vm['balanced_accuracy']:.3f}, recall no IDC {vm['recall_0']:.3f}, "
                  f"recall IDC {vm['recall_1']:.3f}, ROC AUC {vm['roc_auc']:.3f} ({vm['n_patches']} patches)")
    return 0


# -- bench ----------------------------------------------------------------------------------

def cmd_bench(args) -> int:
    from .bench import device_bench, format_tables, to_json

    def progress(stage: str) -> None:
        print(f"idc-edge bench: measuring {stage} ...", file=sys.stderr, flush=True)

    result = device_bench(args.model, quick=args.quick, threads=args.threads, progress=None if args.json else progress)
    print(to_json(result) if args.json else format_tables(result))
    return 0


# -- entry point ----------------------------------------------------------------------------

def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    print(f"idc-edge: warning: {message}", file=sys.stderr)


class _WarningLines(logging.Handler):
    """The runtime's log warnings (skipped frames, a camera dropping out) as ``idc-edge: warning:`` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(f"idc-edge: warning: {record.getMessage()}", file=sys.stderr)
        except Exception:
            self.handleError(record)


def _log_warnings_as_lines() -> None:
    logger = logging.getLogger("idc_edge")
    if not any(isinstance(h, _WarningLines) for h in logger.handlers):
        handler = _WarningLines(logging.WARNING)
        logger.addHandler(handler)
        logger.propagate = False


def _quiet_opencv() -> None:
    """OpenCV's own warnings (e.g. on a missing camera) would add lines to our one-line errors."""
    # FFmpeg's decoder messages ("No JPEG data found in image") bypass OpenCV's log level; our
    # own warnings name the skipped frame instead. Read when the first video is opened.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    try:
        # silent, not ERROR: a corrupt PNG logs "[ERROR:0@0.08] ... IHDR chunk shall be first" before
        # imread returns None, and every failure that matters is checked and said in our own words
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    except AttributeError:  # builds without the logging module
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error or fault, 3 camera lost,
    130 interrupted)."""
    warnings.showwarning = _one_line_warning
    _quiet_opencv()
    _log_warnings_as_lines()
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except CameraLostError as e:
        print(f"idc-edge: error: {e}", file=sys.stderr)
        return EXIT_CAMERA_LOST
    except IdcEdgeError as e:
        print(f"idc-edge: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("idc-edge: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
