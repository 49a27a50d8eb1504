"""The run loop as a library: a source through the detector to any number of outputs.

    from idc_edge.session import RunConfig, run_session
    from idc_edge.sinks import JsonlSink, VideoSink, LiveView

    config = RunConfig(source="slide.mp4", detector=DetectorOptions(um_per_px=1.0, stride=25))
    summary = run_session(config, [JsonlSink("results.jsonl"), VideoSink("overlay.mp4")])
    print(summary.line())

``idc-edge run`` is this function: the command line only parses options into a
:class:`RunConfig` and a list of sinks, and maps the outcome to an exit code.

Threads: capture and inference run on their own threads (:class:`~idc_edge.threads.ThreadedStream`,
unless ``sequential``); the loop thread draws the overlay once per frame when a sink wants it and
hands each frame to every sink by the sink's delivery (see :mod:`idc_edge.sinks.base`): a slow
browser or encoder drops frames on its own thread instead of slowing the run.

Ending: the source ends, ``max_frames`` is reached, a sink asks to stop (``q`` in a window), or
Ctrl-C (``KeyboardInterrupt``; the command line turns SIGTERM, SIGHUP and SIGQUIT into it, or,
while a frame is handed to the outputs, into :meth:`Session.request_stop` once they all have it). Every sink is
then closed (results flushed, video finalised, server stopped) before :meth:`Session.run`
returns its :class:`RunSummary`. A fault while streaming (camera lost, disk full) is raised only
after that, so nothing recorded is lost; ``session.summary`` still holds the summary.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from . import __version__, validate
from .dataset import patient_ids
from .detector import Detector, DetectorOptions
from .errors import IdcEdgeError, OptionError
from .jsonready import utc_now
from .overlay import OverlayInfo, OverlayStyle, draw_overlay
from .profiles import Profile
from .sinks.base import SessionInfo, Sink, SinkFeed, SinkFrame
from .sources.files import compression_warning
from .sources.modes import CameraControls, CameraMode
from .sources.stage import MosaicSource

log = logging.getLogger(__name__)

#: the signals that stop a run cleanly from the command line (SIGQUIT, Ctrl-\\, too: by default it ends the
#: process with its outputs unfinalised, an MP4 then unplayable), held off while the outputs close
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, n))


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs except its outputs; validated when created.

    Attributes:
        source: a video file, image, folder of images or data-set folder (path), or None with ``camera``.
        camera: a camera index, device path or capture URL, or None with ``source``.
        detector: the detector's options (model, µm/px, stride, threshold, threads, mask, reuse).
        patients: with a data-set folder, the patients to show, in order.
        camera_timeout_s: seconds without camera frames before the run ends with ``CameraLostError``.
        sequential: capture, inference and sinks on one thread (for comparison and debugging).
        max_frames: stop after this many frames (None: until the source ends).
        overlay: how the overlay is drawn for the video, window and snapshots.
        camera_mode: size, frame rate and pixel format to ask the camera for.
        camera_controls: exposure and white-balance locks to ask the camera for.
        profile: the microscope profile in use (frames of another size than its scale was measured
            at are refused; the glass is watched for drift from its white reference).
        reduce_mjpeg: 2, 4 or 8 to decode an MJPG camera's frames at that fraction of their size;
            the source's ``decode_factor`` says whether it did (see :func:`with_decode_factor`).
    """

    source: Union[str, Path, None] = None
    camera: Union[int, str, None] = None
    detector: DetectorOptions = field(default_factory=DetectorOptions)
    patients: Optional[tuple[str, ...]] = None
    camera_timeout_s: float = 10.0
    sequential: bool = False
    max_frames: Optional[int] = None
    overlay: OverlayStyle = field(default_factory=OverlayStyle)
    camera_mode: Optional[CameraMode] = None
    camera_controls: Optional[CameraControls] = None
    profile: Optional[Profile] = None
    reduce_mjpeg: int = 1

    def __post_init__(self):
        if (self.source is None) == (self.camera is None):
            raise OptionError("a run reads exactly one of a source (video, image, folder, data set) or a camera")
        if isinstance(self.source, str) and not self.source:
            raise OptionError("the source path is empty: pass a video, image or folder")
        if isinstance(self.source, (bytes, os.PathLike)):  # str(b"x.avi") is the name "b'x.avi'"
            object.__setattr__(self, "source", os.fsdecode(self.source))
        if not isinstance(self.detector, DetectorOptions):
            raise OptionError(f"detector must be DetectorOptions, got {type(self.detector).__name__}")
        if not isinstance(self.overlay, OverlayStyle):
            raise OptionError(f"overlay must be an OverlayStyle, got {type(self.overlay).__name__}")
        # the rest of the objects a run takes, checked here: of another type they failed inside the run with
        # an AttributeError ("'str' object has no attribute 'width'"), and a reduction of 3 with a ValueError
        for name, kind in (("camera_mode", CameraMode), ("camera_controls", CameraControls), ("profile", Profile)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise OptionError(f"{name} must be a {kind.__name__} or None, got {type(value).__name__}", option=name)
        if self.profile is not None:  # a Profile made in code, held to what a profile file may hold
            from .profiles import check_profile

            check_profile(self.profile)
        if isinstance(self.reduce_mjpeg, bool) or self.reduce_mjpeg not in (1, 2, 4, 8):
            raise OptionError(f"reduce_mjpeg must be 1 (full size), 2, 4 or 8, got {self.reduce_mjpeg!r:.40}",
                              option="reduce_mjpeg")
        object.__setattr__(self, "reduce_mjpeg", int(self.reduce_mjpeg))
        object.__setattr__(self, "camera_timeout_s",
                           validate.positive_number("camera_timeout_s", self.camera_timeout_s, "seconds",
                                                   maximum=validate.MAX_WAIT_S))
        if self.max_frames is not None:
            object.__setattr__(self, "max_frames", validate.whole_number("max_frames", self.max_frames))
        object.__setattr__(self, "sequential", validate.flag("sequential", self.sequential))
        object.__setattr__(self, "patients", patient_ids(self.patients))  # 8867.0 was looked for as "8867.0"

    def open_source(self):
        """Open the configured source or camera (:class:`~idc_edge.sources.FrameSource`)."""
        from .sources import open_source
        from .sources.calibrated import CalibratedSource

        if self.camera is not None:
            source = open_source(camera=self.camera, mode=self.camera_mode, controls=self.camera_controls,
                                 camera_timeout_s=self.camera_timeout_s, reduce_mjpeg=self.reduce_mjpeg)
        else:
            source = open_source(str(self.source), um_per_px=self.detector.um_per_px, patients=self.patients)
        return CalibratedSource(source, self.profile) if self.profile is not None else source

    def to_dict(self) -> dict:
        """The options as JSON-ready values (for the results file's session header)."""
        d = self.detector
        from .sources.network import redact_url

        camera = redact_url(self.camera) if isinstance(self.camera, str) else self.camera  # never a password
        return {"source": None if self.source is None else str(self.source), "camera": camera,
                "um_per_px": d.um_per_px, "stride": d.stride, "threshold": d.threshold, "threads": d.num_threads,
                "tissue_mask": d.tissue_mask, "reuse": d.reuse, "dense": d.dense, "context": d.context,
                "model": None if d.model_path is None else os.fsdecode(d.model_path),  # a Path is no JSON
                "patients": list(self.patients) if self.patients else None, "sequential": self.sequential,
                "max_frames": self.max_frames, "camera_timeout_s": self.camera_timeout_s,
                "profile": None if self.profile is None else self.profile.name,
                "white_balance_gains_rgb": None if d.white_balance is None else list(d.white_balance.gains_rgb)}


@dataclass(frozen=True)
class RunSummary:
    """How a run went.

    Attributes:
        frames: frames that reached the outputs (the first of them, the results file where there is one;
            a frame a stop cut off before any output had it is not counted).
        elapsed_s: wall-clock seconds from start to the end of closing.
        skipped: frames (or patch images) the source could not use.
        skipped_what: what ``skipped`` counts, for messages.
        damaged: frames the source gave although libjpeg found their JPEG data damaged (decoded in part).
        stopped: ``"end"`` (source finished), ``"max_frames"``, ``"sink"`` (a sink asked, e.g. ``q``
            in the window), ``"interrupted"`` (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT) or ``"error"``.
        dropped: per sink name, frames a newest-wins sink skipped because it was busy.
        sink_notes: each sink's few words for the summary line.
        error: the fault that ended the run, if any (it is raised too).
        cut_off: 1 when a stop (a bare ``KeyboardInterrupt``) cut the last frame off while it was handed
            to the outputs: some hold it, others not (the command line waits for every output instead).
    """

    frames: int
    elapsed_s: float
    skipped: int = 0
    skipped_what: str = "unusable frame(s)"
    damaged: int = 0
    stopped: str = "end"
    dropped: dict = field(default_factory=dict)
    sink_notes: tuple = ()
    error: Optional[IdcEdgeError] = None
    cut_off: int = 0

    @property
    def fps(self) -> float:
        return self.frames / max(self.elapsed_s, 1e-9)

    def line(self) -> str:
        """``"120 frame(s) in 8.0 s (15.0 fps), 1 unusable frame(s) skipped; 120 result(s) in r.jsonl"``."""
        text = f"{self.frames} frame(s) in {self.elapsed_s:.1f} s ({self.fps:.1f} fps)"
        if self.skipped:
            text += f", {self.skipped} {self.skipped_what} skipped"
        if self.damaged:
            text += f", {self.damaged} with damaged JPEG data (decoded in part)"
        if self.cut_off:
            text += ", the last one cut off by the stop (not in every output)"
        return "; ".join([text, *self.sink_notes])


def with_decode_factor(config: RunConfig, source) -> RunConfig:
    """``config`` with µm/px multiplied by the source's ``decode_factor`` (frames decoded reduced)."""
    factor = int(getattr(source, "decode_factor", 1) or 1)
    um = config.detector.um_per_px
    if factor == 1 or um is None:
        return config
    return replace(config, detector=replace(config.detector, um_per_px=um * factor))


def session_info(config: RunConfig, detector: Detector, source, sinks: Sequence[Sink] = ()) -> SessionInfo:
    """The :class:`SessionInfo` of a run of ``detector`` over ``source`` into ``sinks``."""
    from .spec import file_sha256

    spec = detector.spec
    path = Path(detector.classifier.model_path)
    sha = spec.model_sha256 or file_sha256(path)
    arch = (spec.provenance or {}).get("architecture")
    name = f"{path.stem} ({arch})" if arch else path.stem
    return SessionInfo(
        version=__version__, started_utc=utc_now(), model_name=name, model_path=str(path), model_sha256=sha,
        threshold=float(detector.threshold), um_per_px=float(detector.um_per_px),
        model_um_per_px=float(spec.um_per_px), patch_px=int(detector.patch), stride_px=int(detector.stride),
        cell_um=float(detector.stride * spec.um_per_px), source=getattr(source, "description", str(source)),
        live=bool(getattr(source, "live", False)), source_fps=float(getattr(source, "fps", 0.0) or 0.0),
        camera_mode=_camera_mode(source), options=config.to_dict(),
        context=None if detector.context is None else asdict(detector.context),
        outputs={s.name: d for s in sinks for d in [s.to_dict()] if d})


def _camera_mode(source) -> Optional[dict]:
    """The mode a camera's driver granted (size, fps, pixel format), when the source knows it."""
    granted = getattr(source, "granted", None)
    if granted is None:
        return None
    return {k: getattr(granted, k, None) for k in ("width", "height", "fps", "fourcc")}


class Session:
    """One run of a source through the detector to ``sinks``; see the module docstring.

    Args:
        config: the run's :class:`RunConfig`.
        sinks: outputs, each a :class:`~idc_edge.sinks.base.Sink`.
        source: an already open frame source to use instead of ``config``'s (closed at the end).
        detector: an already made detector to use instead of one from ``config.detector`` (not closed).
    """

    def __init__(self, config: RunConfig, sinks: Iterable[Sink] = (), *, source=None,
                 detector: Optional[Detector] = None):
        if not isinstance(config, RunConfig):
            raise OptionError(f"config must be a RunConfig, got {type(config).__name__}")
        self.config = config
        self.sinks = list(sinks)
        for s in self.sinks:
            if not isinstance(s, Sink):
                raise OptionError(f"sinks must be idc_edge.sinks.Sink objects, got {type(s).__name__}")
        self._source = source
        self._detector = detector
        self.info: Optional[SessionInfo] = None
        self.summary: Optional[RunSummary] = None
        #: set once the run has taken a stop (Ctrl-C) and is finishing: a front end that turns
        #: signals into KeyboardInterrupt holds later ones off from then on (they would cut the closing)
        self.stopping = False
        #: True while a frame is handed to the outputs: a front end's stop then calls
        #: :meth:`request_stop` rather than raising, so every output gets that frame or none does
        self.delivering = False

    def request_stop(self) -> None:
        """End the run after the frame being handed to the outputs (safe from a signal handler)."""
        self.stopping = True

    def _check_outputs(self, detector, source) -> None:
        """Refuse a sink whose file is the source, the model, its sidecar or another sink's file (by
        inode: links count), before any sink starts writing."""
        from .fileio import check_distinct
        from .spec import sidecar_path

        model = getattr(getattr(detector, "classifier", None), "model_path", None)
        inputs = [("the source", getattr(source, "path", None) or self.config.source)]
        if model is not None:
            inputs += [("the model", model), ("the model's sidecar", sidecar_path(model))]
        outputs = [(type(s).__name__, s.path) for s in self.sinks if isinstance(getattr(s, "path", None), (str, Path))]
        outputs += [(f"{type(s).__name__}'s frame index", s.index_path) for s in self.sinks
                    if isinstance(getattr(s, "index_path", None), (str, Path))]
        outputs += [(f"{type(s).__name__}'s lock file", s.lock_path) for s in self.sinks
                    if isinstance(getattr(s, "lock_path", None), (str, Path))]
        outputs += [(f"{type(s).__name__}'s folder", s.folder) for s in self.sinks  # snapshots: a folder made later
                    if isinstance(getattr(s, "folder", None), (str, Path)) and not os.path.lexists(s.folder)]
        check_distinct([(label, p) for label, p in inputs if isinstance(p, (str, Path))], outputs)

    def run(self) -> RunSummary:
        """Stream until the end (see the module docstring); returns the summary.

        Raises:
            IdcEdgeError: before the first frame (bad model, source or output), or the fault that
                ended the run (after every sink was closed; ``self.summary`` is set, and is None
                when the run failed before its first frame).
        """
        from .threads import ThreadedStream

        started = time.monotonic()
        closers: list = []
        feeds: list[SinkFeed] = []
        frames, stopped, failure, cut_off = 0, "end", None, 0
        source = None
        streaming = early = False
        refused: set = set()
        try:
            refused = {id(s) for s in self.sinks if s.one_run and s.taken_by_a_session}
            for sink in self.sinks:
                sink.taken_by_a_session = True
            if refused:
                raise _reused_sink_error(next(s for s in self.sinks if id(s) in refused))
            detector = self._detector
            if detector is None:
                detector = Detector(self.config.detector)
                closers.append(detector)
            source = self._source if self._source is not None else self.config.open_source()
            closers.append(source)
            self._check_outputs(detector, source)
            if self.config.camera is not None and (self.config.profile is None or self.config.profile.um_per_px is None):
                warnings.warn(unmeasured_scale_warning(self.config.detector.um_per_px, detector.spec.um_per_px),
                              UserWarning, stacklevel=2)
            coarse = self.config.camera is not None and coarse_camera_warning(self.config.detector.um_per_px,
                                                                               detector.spec.um_per_px)
            if coarse:
                warnings.warn(coarse, UserWarning, stacklevel=2)
            compressed = compression_warning(source, detector.um_per_px)
            if compressed:
                warnings.warn(compressed, UserWarning, stacklevel=2)
            info = self.info = session_info(self.config, detector, source, self.sinks)
            for sink in self.sinks:
                sink.start(info)
                feed = SinkFeed(sink)
                feeds.append(feed)
                closers.append(feed)
            draw = any(s.needs_overlay for s in self.sinks)
            wants_image = any(s.needs_image for s in self.sinks)
            keep = draw or wants_image
            style = self.config.overlay
            labels = OverlayInfo(um_per_px=info.um_per_px, model_name=info.model_name, cell_um=info.cell_um)
            if self.config.sequential:
                results = detector.stream(source, keep_image=keep)
            else:
                results = ThreadedStream(detector, source, keep_image=keep)
                closers.append(results)  # closed first: stops its threads before the source and detector
            streaming = True
            warned: set = set()
            # a data-set folder's frames are at the model's scale by making; other frames' scale must be given
            assumed = (detector.spec.um_per_px if self.config.detector.um_per_px is None
                       and not isinstance(source, MosaicSource) else None)
            for result in results:
                warn_once(result, warned, assumed)
                fps = (frames + 1) / max(time.monotonic() - started, 1e-9)
                overlay = draw_overlay(result.image, result, style, fps=fps, info=labels) if draw else None
                if not wants_image and result.image is not None:
                    # the raw frame was kept only to draw on: freed now, not held by every queued frame
                    result = replace(result, image=None)
                item = SinkFrame(result, overlay, fps, info)
                del overlay, result  # only ``item`` holds them, and only until the sinks have it
                self.delivering, taken = True, 0  # a front end's stop waits for the end of this (request_stop)
                for feed in feeds:
                    feed.offer(item)
                    frames += not taken  # counted once an output has it (the results file, when there is one)
                    taken += 1
                frames += not feeds
                self.delivering = False
                del item
                if self.stopping:  # a stop asked while the frame was handed out (request_stop)
                    stopped = "interrupted"
                    break
                if any(s.stop_requested for s in self.sinks):
                    stopped = "sink"
                    break
                if self.config.max_frames and frames >= self.config.max_frames:
                    stopped = "max_frames"
                    break
        except KeyboardInterrupt:
            self.stopping = True
            stopped = "interrupted"
            cut_off = int(self.delivering and taken > 0)
        except IdcEdgeError as e:
            if not streaming:
                early = True
                raise
            stopped, failure = "error", e  # camera lost, disk full: raised after everything is finalised
        finally:
            self.delivering = False  # also after a sink's fault: a later stop is a stop again
            started_sinks = {id(f.sink) for f in feeds}
            # never started: close them too (not one an earlier run took and closed: it is not this run's)
            closers.extend(s for s in self.sinks if id(s) not in started_sinks and id(s) not in refused)
            closing_error = _close_all(closers) if closers else None
            failure = failure or closing_error
            elapsed = time.monotonic() - started
            self.summary = None if early else RunSummary(
                frames=frames, elapsed_s=elapsed, skipped=getattr(source, "skipped", 0) if source is not None else 0,
                skipped_what=getattr(source, "skipped_what", "unusable frame(s)"),
                damaged=getattr(source, "damaged", 0) if source is not None else 0, stopped=stopped,
                dropped={f.sink.name: f.dropped for f in feeds if f.dropped},
                sink_notes=tuple(n for n in (f.sink.summary() for f in feeds) if n), error=failure,
                cut_off=cut_off)
        if failure is not None:
            raise failure
        return self.summary


def _reused_sink_error(sink: Sink) -> OptionError:
    """The error for a ``one_run`` sink that an earlier session took: a second run through it left a dead
    live view (its server closed, a thread's traceback, the run still printing its address) or a video
    whose frame index named the first run's session, so the report took the second run's pictures for it."""
    kind = type(sink).__name__
    where = getattr(sink, "path", None) or getattr(sink, "url", None)
    return OptionError(f"{kind}{f' {str(where)!r}' if where else ''} was given to an earlier run, which closed it: a "
                       f"{kind} serves one run (its file, lock and server are that run's); make a new {kind} for "
                       "each run", options=[kind])


def unmeasured_scale_warning(um_per_px: Optional[float], model_um_per_px: float) -> str:
    """What to tell the user when a camera's scale was typed (or left out), not measured: idc-edge
    cannot tell every wrong µm/px from the picture (one 2× too small changes about one decision in
    eight, and the slide looks alike at 4 and 8 µm/px)."""
    given = (f"um_per_px {um_per_px:g} was given, not measured" if um_per_px is not None else
             f"no um_per_px was given, so frames are taken to be at the model's {model_um_per_px:g} um per pixel")
    return (f"the camera's scale is not calibrated ({given}); a wrong scale is not always seen in the picture "
            "(2x too small goes unnoticed and changes about 1 decision in 8): measure it once on a stage "
            "micrometer (`idc-edge calibrate scale`) and run with that profile")


#: Coarsest camera scale (µm of specimen per frame pixel) at which a colour camera's demosaicing is
#: averaged away by the rescale to the model's scale. A Bayer sensor measures one colour per pixel and
#: guesses the other two from its neighbours; at 4 µm/px (no rescale) the model agreed with a finer
#: camera on 88–89 % of windows with bilinear or edge-aware demosaicing (96 % with VNG), at 2 µm/px
#: on 98 % with every method (`benchmarks.camera_conditions`' validation fields, 2026-11-29), but with
#: grain on 84–86 % at 100 e⁻ per photosite and 70–73 % at 30 e⁻: demosaiced grain is blotchy, and the
#: noise gate's fine-scale reading sees only ~60 % of it. At 1 µm/px the same grain is 92–99 %.
COARSEST_CAMERA_UM_PER_PX = 1.5


def coarse_camera_warning(um_per_px: Optional[float], model_um_per_px: float) -> Optional[str]:
    """What to tell the user when a camera's pixels (``um_per_px``, µm per frame pixel, given or
    measured) are coarser than :data:`COARSEST_CAMERA_UM_PER_PX`; None when they are not, or not known
    (:func:`unmeasured_scale_warning` covers that)."""
    if um_per_px is None or um_per_px <= COARSEST_CAMERA_UM_PER_PX:
        return None
    return (f"the camera's pixels are {um_per_px:g} um at the specimen, close to the model's {model_um_per_px:g}: "
            "a colour camera's demosaicing (the two colours each pixel does not measure, guessed from its "
            "neighbours) is then not averaged away: with the grain of a dim field or a raised gain the model agreed "
            "with a finer camera on only 70–89 % of windows, and the noise check sees the blotchy grain only in "
            "part; nor is a compressed stream's (MJPG) JPEG averaged away (at the model's scale quality 85 changed "
            "about 1 decision in 10); use an objective or camera adapter that gives at most "
            f"{COARSEST_CAMERA_UM_PER_PX:g} um per pixel (a higher magnification, or the camera's full resolution)")


#: (reason, whether a result has it, what to tell the user the first time a frame of the run has it)
NO_CALL_WARNINGS = (
    ("streaked", lambda r: getattr(r, "streaked", False) is True,
     "a frame is streaked (the stage moved during the exposure): its tissue is no call (hold the stage still "
     "while a field is read, or shorten the exposure)"),
    ("colour_blurred", lambda r: getattr(r, "colour_blurred", False) is True,
     "a frame has one colour out of focus while the others are sharp (the camera's lens or adapter focuses "
     "colours apart): its tissue is no call (focus on the camera's picture, not through the eyepieces; if a "
     "colour stays blurred, the adapter needs colour correction)"),
    ("in_focus", lambda r: getattr(r, "in_focus", True) is False and not getattr(r, "streaked", False)
     and not getattr(r, "colour_blurred", False),
     "a frame is out of focus: its tissue is no call (focus the microscope; a um_per_px larger than the camera's "
     "real scale looks the same: check it on a stage micrometer, `idc-edge calibrate scale`)"),
    ("washed_out", lambda r: getattr(r, "washed_out", False) is True,
     "a frame is washed out: stray light reaches the camera (even its darkest tissue lets through much of "
     "the glass's light, so nuclei look pale): its tissue is no call (cap the eyepieces or close the "
     "camera port's light path, shade the stand from room light, close the condenser's aperture "
     "diaphragm to about 3/4 of the objective's, and clean the optics)"),
    ("exposure_ok", lambda r: getattr(r, "exposure_ok", True) is False and not getattr(r, "washed_out", False),
     "a frame is too dark or clipped: its tissue is no call (set the lamp or exposure, or calibrate a white "
     "reference on blank glass (`idc-edge calibrate white`) and use the profile)"),
    ("ink", lambda r: getattr(r, "no_call_ink", 0) > 0,
     "marker ink covers tissue in view (a colour H&E never has, or a broad stroke that lets too little red "
     "through: blue, violet, black): the windows under it are no call, since the model reads the stains, "
     "not the ink"),
    ("stain_ok", lambda r: getattr(r, "stain_ok", True) is False,
     "the tissue's stains are not coloured as H&E's (its blue stain, haematoxylin, reads redder than its pink "
     "one): its tissue is no call. Red and blue are most likely swapped: idc-edge takes frames in OpenCV's BGR "
     "order, so reverse the channels of RGB frames (frame[..., ::-1]) or set the camera or pipeline to BGR; "
     "otherwise set the camera's hue control back to its default"),
    ("faint_colour", lambda r: getattr(r, "faint_colour", False) is True,
     "a frame's colours are too faint for stained tissue (even its darkest parts are nearly grey): it is no call, "
     "and its tissue may not even be found (set the camera's saturation, or colour, control back to its default, "
     "switch a monochrome or raw stream to the camera's colour mode, and use an H&E-stained slide)"),
    ("colour_ok", lambda r: getattr(r, "colour_ok", True) is False and getattr(r, "stain_ok", True) is not False
     and getattr(r, "faint_colour", False) is not True and getattr(r, "no_colour", False) is not True,
     "the light has a colour cast the model was not trained on (on the glass, on the palest tissue where no glass "
     "is in view, or tissue as green as it is red and blue): its tissue is no call (if the glass is clipped in "
     "a channel, lower the exposure first, since clipping hides a cast; then calibrate a white reference on "
     "blank glass (`idc-edge calibrate white`) and use the profile)"),
    ("noise_ok", lambda r: getattr(r, "noise_ok", True) is False,
     "a frame is too noisy (grain on its glass or tissue beyond what the model was trained on): its "
     "tissue is no call (more light or a longer exposure, and a lower camera gain)"),
)


def assumed_scale_note(model_um_per_px: float) -> str:
    """Added to the out-of-focus warning of a run whose frames' scale nobody gave: the commonest cause
    of a sharp picture read as blurred is a camera finer than the model's scale taken to be at it."""
    return (f"; no um_per_px was given, so frames are taken to be at the model's {model_um_per_px:g} um per pixel: "
            "a sharp picture from a finer camera is magnified for the model and looks just as blurred, so give "
            "the camera's scale (um_per_px, or a profile with a measured one)")


def warn_once(result, warned: set, assumed_um_per_px: Optional[float] = None) -> None:
    """Log each no-call reason of ``result`` the first time it appears in a run (``warned`` holds
    the reasons already told). A frame decoded only in part (``result.damage``) is left out: the
    source has said so, and the sharp edge of the decoder's grey fill set off advice that did not
    apply (the stage moved, red and blue swapped); its record still holds every reading.
    ``assumed_um_per_px``: the model's scale when the frames were taken to be at it for want of one
    (the out-of-focus warning then says so, :func:`assumed_scale_note`)."""
    if getattr(result, "damage", None) is not None:
        return
    for reason, has, text in NO_CALL_WARNINGS:
        if reason not in warned and has(result):
            warned.add(reason)
            if reason == "in_focus" and assumed_um_per_px is not None:
                text += assumed_scale_note(assumed_um_per_px)
            log.warning("frame %d: %s", result.index, text)


def _close_all(closers: list) -> Optional[IdcEdgeError]:
    """Close in reverse order; on the main thread with Ctrl-C/SIGTERM/SIGHUP/SIGQUIT held off, so a second
    signal cannot leave a video without its index. One failing close does not stop the others: a
    typed error is returned (the first), anything else logged."""
    main = threading.current_thread() is threading.main_thread()
    held = {}
    if main:
        for s in STOP_SIGNALS:
            try:
                held[s] = signal.signal(s, signal.SIG_IGN)
            except (ValueError, OSError):
                pass
    first: Optional[IdcEdgeError] = None
    try:
        for c in reversed(closers):
            try:
                c.close()
            except IdcEdgeError as e:
                first = first or e
            except Exception as e:  # report, keep closing the rest
                log.warning("closing %s failed: %s", getattr(getattr(c, "sink", c), "name", type(c).__name__), e)
    finally:
        for s, handler in held.items():
            signal.signal(s, handler)
    return first


def run_session(config: RunConfig, sinks: Sequence[Sink] = (), **kwargs) -> RunSummary:
    """Run ``config`` into ``sinks`` and return the :class:`RunSummary` (see :class:`Session`)."""
    return Session(config, sinks, **kwargs).run()
