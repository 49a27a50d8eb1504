"""``idc-edge classify``: patch images or folders -> CSV of IDC probabilities.

An image no larger than a patch is one row (smaller edge patches padded with white, as in the data
set), judged as ``run`` judges a frame: background (glass, or no colour at all) by the detector's
tissue mask gets ``tissue`` 0 and an empty probability (``--no-mask``: scored anyway), and an image
less than a quarter of a patch or without colour is warned about. A larger image is never cut to its corner: it is tiled like a frame in ``run`` (rescaled by
``--um-per-px``, ``--stride`` apart, background left out by the tissue mask) and gives one row per
patch window, with the window's top-left ``x``, ``y`` in the image's pixels; background windows have
an empty probability and ``tissue`` 0. Its windows are decided as in ``run``: with their neighbours'
scores when the model has a field context (``--no-context``: each alone); a patch image is alone.
"""
from __future__ import annotations

import contextlib
import csv
import os
import stat
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..errors import SourceError
from .bindings import NO_DENSE, NO_MASK, add_bound, add_model_args
from .options import number, path, whole_number


def add_parser(sub) -> None:
    cls = sub.add_parser("classify", help="patch images or folders -> CSV of IDC probabilities (larger images: "
                                          "one row per patch window)")
    cls.add_argument("paths", nargs="+", type=path("PATH"), metavar="PATH",
                     help="patch images or folders of them; an image larger than a patch is tiled, one row per window")
    add_model_args(cls)
    cls.add_argument("--um-per-px", type=number("--um-per-px"), metavar="UM",
                     help="for images larger than a patch: their microns per pixel (default: the model's)")
    cls.add_argument("--stride", type=whole_number("--stride"), metavar="PX",
                     help="for images larger than a patch: distance between windows in model pixels (default: a patch)")
    add_bound(cls, (NO_DENSE, NO_MASK))  # a stride the dense pass cannot give is refused naming it
    cls.add_argument("--out", type=path("--out", "is not standard output here: omit --out to write to standard output"),
                     metavar="CSV", help="write the CSV here (default: standard output)")
    cls.add_argument("--quiet", action="store_true", help="no progress bar")
    cls.set_defaults(func=cmd_classify)


def _files_under(folder: Path) -> list[Path]:
    """Every entry under ``folder`` that is not a folder (files, and FIFOs, devices or broken links for
    the reader to skip and count), following links to folders as ``evaluate`` and the data-set reader
    do (a data set put together from links; ``Path.rglob`` left a linked class folder out without a
    word), each folder once however many links lead to it, so a link loop ends. Hidden folders are not
    entered (:func:`~idc_edge.sources.files.is_hidden`: a USB stick's ``.Trashes`` holds deleted images)."""
    from ..sources.files import is_hidden

    seen: set = set()
    out: list[Path] = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not is_hidden(Path(d))]
        try:
            st = os.stat(root)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        out.extend(Path(root) / f for f in files)
    return out


def _patch_files(paths: Sequence[str]) -> list[Path]:
    from ..fileio import name, stat_path
    from ..sources import IMAGE_SUFFIXES
    from ..sources.files import in_name_order, is_folder_image

    files: list[Path] = []
    for text in paths:
        mode = stat_path(text, "input", SourceError, "; pass patch images or folders of them").st_mode
        p = Path(text)
        if stat.S_ISDIR(mode):
            # everything named like an image but a folder: a FIFO, device or broken link is then skipped
            # and counted by the reader, never silently left out of the listing
            found = in_name_order(f for f in _files_under(p) if is_folder_image(f))
            if not found:
                raise SourceError(f"folder {name(text)} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            files.extend(found)
        elif stat.S_ISREG(mode):
            files.append(p)
        else:
            raise SourceError(f"{name(text)} is not a regular file or folder (a FIFO or device?); "
                              "pass patch images or folders of them")
    return files


@contextlib.contextmanager
def _open_out(args, files: Sequence[Path], model: Path):
    """The CSV's text stream: standard output, or ``--out`` checked (never an input) and written
    whole or not at all: it replaces an earlier CSV only when every row is on disk."""
    from ..errors import RecordError
    from ..fileio import check_distinct, replacing
    from ..spec import sidecar_path

    if not args.out:
        from .encoding import DATA_HANDLER, encode_errors_with

        encode_errors_with(DATA_HANDLER, sys.stdout)  # a name the terminal cannot show is escaped, never spelt
        yield sys.stdout
        return
    check_distinct([("--model", model), ("the model's sidecar", sidecar_path(model))]
                   + [("an input image", f) for f in files], [("--out", args.out)])
    with replacing(args.out, "--out", error=RecordError, replaces="csv") as fd:
        # undecodable bytes of file names are written back as the same bytes
        with os.fdopen(fd, "w", newline="", encoding="utf-8", errors="surrogateescape", closefd=False) as out:
            yield out


class _Tiler:
    """Tiles images larger than a patch with a :class:`~idc_edge.detector.Detector`.

    Its options are checked when it is made, before any row is written: ``--um-per-px`` and
    ``--stride`` only act on images larger than a patch, yet a value that could never be used (NaN,
    0, a stride this model cannot give) is refused whatever the images turn out to be. The detector
    itself is made then when either option was given (so a stride the model's dense pass cannot
    give is refused too), else on first use (a run of patch images never loads it).
    """

    def __init__(self, args, threshold: Optional[float]):
        from ..detector import DetectorOptions

        self.options = DetectorOptions(model_path=args.model, um_per_px=args.um_per_px, stride=args.stride,
                                       threshold=threshold, num_threads=args.threads,
                                       context=False if args.no_context else None, tissue_mask=not args.no_mask,
                                       dense=False if args.no_dense else None)
        self.detector = None
        self.no_call = 0  # tissue windows without a call so far
        if args.um_per_px is not None or args.stride is not None or args.no_dense:
            self._open()

    def _open(self):
        from ..detector import Detector

        if self.detector is None:
            self.detector = Detector(self.options)
        return self.detector

    def rows(self, path, bgr, notes) -> list:
        """The CSV rows of the image ``bgr`` read from ``path``, one per window; an image without colour is
        noted in ``notes`` (the patch images' :class:`~idc_edge.patchnotes.PatchNotes`), said once with them."""
        import warnings

        import numpy as np

        from ..tissue import NoColourWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NoColourWarning)  # said of "the frames", and again of the patches
            r = self._open().detect(bgr)
        if r.no_colour:
            notes.note_no_colour(path)
        notes.note_jpeg(path, self.detector.um_per_px)
        out = []
        for (i, j), prob in np.ndenumerate(r.probabilities):
            x0, y0 = (int(v) for v in r.boxes[i, j, :2])
            tissue = bool(r.tissue[i, j])
            # a tissue window without a score is no call (out of focus, badly exposed, a colour cast, noise):
            # its probability and decision stay empty, never "nan" and idc 0, which read as "no IDC"
            called = tissue and bool(np.isfinite(prob))
            self.no_call += tissue and not called and not r.no_colour  # an image without colour is said as that
            out.append([csv_path(path), "", "", f"{prob:.6f}" if called else "", int(r.idc[i, j]) if called else "",
                        x0, y0, int(tissue)])
        return out

    def close(self):
        if self.detector is not None:
            self.detector.close()


class _PatchGate:
    """Decides whether a patch image is tissue as the detector decides it for a frame's window: its
    tissue mask and ``min_fraction`` (``options``: the detector's), unless ``--no-mask``; and notes,
    to say once at the end, the images ``run`` would warn about (no colour; less than a quarter of
    a ``size`` px patch; JPEG compressed hard at the patches' ``um_per_px``, the model's scale)."""

    def __init__(self, options, size: int, um_per_px: float):
        from ..patchnotes import PatchNotes
        from ..tiling import make_grid

        self.options = options
        self.size = size
        self.um_per_px = um_per_px  # a patch image's: the model's scale
        self.grid = make_grid((size, size), size, size, 1.0)  # one window: the padded patch
        self.notes = PatchNotes(size)

    def tissue(self, path, bgr, rgb) -> bool:
        """True when the padded RGB patch ``rgb`` of image ``bgr`` (at ``path``) is to be scored."""
        import cv2

        from ..tissue import patch_fractions, tissue_pixels, tissue_windows

        self.notes.note_size(path, bgr.shape[1], bgr.shape[0])
        self.notes.note_jpeg(path, self.um_per_px)
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
        masked = self.options.tissue_mask
        found = not masked or bool(tissue_windows(patch_fractions(tissue_pixels(rgb, self.options.tissue, hsv),
                                                                  self.grid), self.options.tissue)[0, 0])
        if not found or not masked:  # checked where run checks it: no tissue, or scored without the mask
            self.notes.note_colour(path, rgb, hsv)
        return found

    def warn(self) -> None:
        """The warnings ``run`` gives, once each, with a count and an example (:mod:`idc_edge.patchnotes`)."""
        for text in self.notes.messages("image(s)", self.options.tissue_mask,
                                        "classify takes patch images at the model's scale"):
            print(f"idc-edge: warning: {text}", file=sys.stderr)


def _patch_row(path, prob: Optional[float], threshold: float) -> list:
    """The CSV row of a patch image; ``prob`` None: background, an empty probability and ``tissue`` 0."""
    from ..dataset import parse_patch_path
    from ..errors import DatasetError

    try:
        rec = parse_patch_path(path)
        patient, label = rec.patient, rec.label
    except DatasetError:
        patient, label = "", ""
    patient = csv_text(patient)
    if prob is None:
        return [csv_path(path), patient, label, "", "", 0, 0, 0]
    return [csv_path(path), patient, label, f"{prob:.6f}", int(prob >= threshold), 0, 0, 1]


#: first characters a spreadsheet takes as the start of a formula in a CSV cell (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_path(path) -> str:
    """A file's path for a CSV cell that a spreadsheet shows as text: a relative path starting with a
    formula character is written ``./PATH``, the same file (``classify .`` on a patch named
    ``=HYPERLINK(...).png`` wrote a cell a spreadsheet ran as a formula); other paths unchanged."""
    text = str(path)
    return "./" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(text: str) -> str:
    """Text for a CSV cell that a spreadsheet shows as text: one starting with a formula character
    gets a leading apostrophe, as spreadsheets themselves mark such text (a patient id parsed from a
    file name ``=1+1_idx5_x0_y0_class0.png``); other text unchanged."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cmd_classify(args) -> int:
    import cv2
    import numpy as np

    from .. import validate
    from ..classifier import PatchClassifier, resolve_model_path
    from ..dataset import patch_rgb
    from ..errors import MemoryBudgetError
    from ..fileio import name, read_image
    from ..progress import Progress

    asked = None if args.threshold is None else validate.probability("threshold", args.threshold)
    files = _patch_files(args.paths)
    # --out is replaced only when every row is written; a failure keeps the earlier CSV whole
    with _open_out(args, files, resolve_model_path(args.model)) as out, \
            PatchClassifier(args.model, num_threads=args.threads) as clf, \
            contextlib.closing(_Tiler(args, asked)) as tiler:  # asked None: the detector's own threshold
        threshold = clf.spec.threshold if asked is None else asked  # a patch image is scored alone
        size = clf.spec.patch_size_px
        progress = Progress("classify", enabled=None if not args.quiet else False)
        skipped = []
        too_big = []  # (file, MemoryBudgetError): read, and named as over the budget, not as corrupt
        others = []  # (file, SourceError, kind): a video named like an image, a camera raw file; named so, not corrupt
        writer = csv.writer(out)
        writer.writerow(["path", "patient", "label", "probability", "idc", "x", "y", "tissue"])
        gate = _PatchGate(tiler.options, size, clf.spec.um_per_px)
        pending = []  # (path, padded RGB patch or None for background), in the order of the files

        def flush():
            scored = [rgb for _, rgb in pending if rgb is not None]
            probs = iter(clf.predict(np.stack(scored)) if scored else ())
            writer.writerows(_patch_row(f, None if rgb is None else next(probs), threshold) for f, rgb in pending)
            pending.clear()

        for done, f in enumerate(files, 1):
            try:
                bgr = read_image(f, "image", flags=cv2.IMREAD_COLOR)
            except SourceError as e:
                kind = _other_kind(f)
                if kind:
                    others.append((f, e, kind))
                else:
                    skipped.append(f)
                continue
            except MemoryBudgetError as e:
                too_big.append((f, e))
                continue
            if bgr.shape[0] > size or bgr.shape[1] > size:
                flush()  # rows stay in the order of the files
                writer.writerows(tiler.rows(f, bgr, gate.notes))
            else:
                rgb = patch_rgb(bgr, size)
                pending.append((f, rgb if gate.tissue(f, bgr, rgb) else None))
                if len(pending) >= 512:
                    flush()
            progress(done, len(files))
        flush()
        if len(skipped) + len(too_big) + len(others) == len(files):  # nothing classified is bad input
            if not skipped and len({kind for *_, kind in others} | ({"too big"} if too_big else set())) == 1:
                raise (too_big or others)[0][1]  # the one reason: what would decode it, or what the file is
            if not too_big and not others:
                raise SourceError(f"none of the {len(files)} image(s) could be read (corrupt or not images), "
                                  f"e.g. {name(skipped[0])}; pass patch images or folders of them")
            _warn_others(others)
            _warn_too_big(too_big)
            reasons = [text for count, text in (
                (skipped, f"{len(skipped)} could not be read (corrupt or not images), e.g. {name(skipped[0])}"
                 if skipped else ""),
                (too_big, f"{len(too_big)} are over the memory budget (above)"),
                *((kind, f"{sum(k == kind for *_, k in others)} are {kind} (above)")
                  for kind in dict.fromkeys(k for *_, k in others))) if count]
            raise SourceError(f"none of the {len(files)} image(s) could be classified: {', and '.join(reasons)}; "
                              "pass patch images or folders of them")
        if out is not sys.stdout:
            out.flush()  # a full disk is said here (as RecordError, by _open_out), before the file is replaced
        gate.warn()
        if tiler.no_call:
            print(f"idc-edge: warning: {tiler.no_call} tissue window(s) of the larger images had no call (out of "
                  "focus, badly exposed, a colour cast or too grainy for the model): their probability and idc are "
                  "empty; check the images' focus and --um-per-px", file=sys.stderr)
    if skipped:
        print(f"idc-edge: warning: skipped {len(skipped)} unreadable image(s) (corrupt or not images), "
              f"e.g. {name(skipped[0])}", file=sys.stderr)
    _warn_too_big(too_big)
    _warn_others(others)
    return 0


def _warn_too_big(too_big: list) -> None:
    """One warning for the images skipped as over the memory budget, with the first one's reason (it
    names its size, what decoding it would need and what to do); they are not corrupt."""
    if too_big:
        print(f"idc-edge: warning: skipped {len(too_big)} image(s) over the memory budget, e.g. {too_big[0][1]}",
              file=sys.stderr)


def _other_kind(path) -> Optional[str]:
    """What a file that gave no image is instead, told by its bytes: "video(s) named like images" (``scan.png``),
    "camera raw file(s)" (a DNG, whose only picture OpenCV reads is a preview), images over a pixel limit set in
    the environment (``OPENCV_IO_MAX_IMAGE_PIXELS``), images of a format OpenCV does not read (a phone's HEIC
    photos, TGA); None for a corrupt file."""
    from ..fileio import image_dimensions, over_opencv_pixel_limit, read_bytes
    from ..multiimage import not_the_picture
    from ..sources.sniff import file_video_format, unread_format

    if file_video_format(path):
        return "video(s) named like images"
    try:
        data = read_bytes(path, "image")
    except (SourceError, OSError):
        return None
    if not_the_picture(data):
        return "camera raw file(s)"
    limit = over_opencv_pixel_limit(image_dimensions(data))
    if limit is not None:
        return f"image(s) of more pixels than OPENCV_IO_MAX_IMAGE_PIXELS={limit} in the environment lets OpenCV decode"
    fmt = unread_format(data)
    return f"{fmt} image(s)" if fmt else None


def _warn_others(others: list) -> None:
    """One warning for each kind of file skipped as no image (videos named like images, camera raw files),
    with the first one's reason; they are not corrupt (they were counted so)."""
    for kind in dict.fromkeys(k for *_, k in others):
        first = next(e for _, e, k in others if k == kind)
        print(f"idc-edge: warning: skipped {sum(k == kind for *_, k in others)} {kind}, e.g. {first}", file=sys.stderr)
