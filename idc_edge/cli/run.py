"""``idc-edge run``: stream a camera, video, image or data-set folder through the detector.

The loop itself is :mod:`idc_edge.session`; this module turns options into a
:class:`~idc_edge.session.RunConfig` and a list of sinks, runs it, prints the summary line and
leaves exit codes to :func:`idc_edge.cli.main`.
"""
from __future__ import annotations

import os
import signal
import sys

from ..errors import IdcEdgeError, OptionError, SourceError
from .bindings import MODEL_FLAGS, NO_DENSE, NO_MASK, Bound, add_bound, bound_values
from .options import NO_STDOUT, add_camera_args, number, path, patient_id, whole_number

#: The flags of ``run`` that fill one field of ``DetectorOptions`` or ``RunConfig`` (see
#: :mod:`.bindings`); ``--um-per-px`` and ``--camera-timeout`` are merged with a profile and checked
#: against the source in :func:`.camera_setup.resolve` first.
RUN_FLAGS = MODEL_FLAGS + (
    Bound("--um-per-px", "detector.um_per_px", "microns per pixel of the frames (default: the model's, no rescale)",
          number("--um-per-px"), "UM"),
    Bound("--stride", "detector.stride",
          "distance between patches in model pixels (default: one patch, no overlap); a model with a dense pass "
          "(one convolutional pass per frame) takes only multiples of its output stride, e.g. 25 or 50 for an "
          "output stride of 25 px, and refuses others (idc-edge info shows it)", whole_number("--stride"), "PX"),
    NO_DENSE,
    NO_MASK,
    Bound("--no-reuse", "detector.reuse",
          "classify every tissue patch of every frame (default: a patch that did not change keeps its score)",
          switch=False),
    Bound("--sequential", "run.sequential", "capture, inference and drawing one after another on one thread "
          "(default: each on its own thread, overlapping)", switch=True),
    Bound("--max-frames", "run.max_frames", "stop after N frames", whole_number("--max-frames"), "N"),
    Bound("--patient", "run.patients", "with a data-set folder: patients to show", patient_id("--patient"), "ID",
          repeat=True),
    Bound("--camera-timeout", "run.camera_timeout_s", "a camera: give up after S seconds without frames (default 10)",
          number("--camera-timeout"), "S"),
)


def add_parser(sub) -> None:
    run = sub.add_parser("run", help="stream a camera, video, image or data-set folder through the detector",
                         description="Classify every tissue patch of every frame and draw an IDC heat map.")
    add_camera_args(run, "video file, image, folder of images, or a folder in the data set's layout (shown as a "
                         "moving stage)", source_type=path("--source"))
    run.add_argument("--no-gates", action="store_true",
                     help="make a call everywhere: no focus, exposure, colour or noise gate (default: out-of-focus, "
                          "badly exposed, colour-cast or noisy tissue is no call)")
    run.add_argument("--full-decode", action="store_true",
                     help="decode an MJPG camera's frames at full size (default: at 1/2, 1/4 or 1/8 when the model's "
                          "scale allows, 1/2 at most with a window, video or live view)")
    run.add_argument("--no-white-balance", action="store_true",
                     help="with --profile: leave the frames' colours as they come (default: the profile's white gains)")
    add_bound(run, RUN_FLAGS)
    run.add_argument("--show", action="store_true",
                     help="show the overlay in a window (needs a display and idc-edge[gui]; else use --serve)")
    run.add_argument("--save-video", type=path("--save-video", NO_STDOUT), metavar="OUT", help="write the overlay video (.mp4, .avi, .mkv)")
    run.add_argument("--record", type=path("--record", "is not standard output here: name /dev/stdout for it"), metavar="OUT.jsonl",
                     help="append this run to a results file: a session header, then one JSON line per frame "
                          "(flushed to disk); see `idc-edge report`")
    run.add_argument("--serve", nargs="?", const="127.0.0.1:8080", metavar="[HOST:]PORT",
                     help="live view in a browser (default 127.0.0.1:8080, this machine only; 0.0.0.0:PORT lets "
                          "other machines on the network watch)")
    run.add_argument("--snapshots", type=path("--snapshots", "is not standard output here: name a folder"), metavar="DIR",
                     help="where the Snapshot button (--serve) and the s key (--show) save PNG + JSON "
                          "(default ./idc-snapshots)")
    run.add_argument("--quiet", action="store_true", help="no progress line")
    run.set_defaults(func=cmd_run)


def _check_outputs(args) -> None:
    """Refuse an output that is an input or the other output (by inode: links count), before
    anything is opened or truncated."""
    from ..classifier import resolve_model_path
    from ..fileio import check_distinct, gone_working_folder, name, working_folder_gone
    from ..sinks.video import FRAME_INDEX_SUFFIX, LOCK_SUFFIX
    from ..spec import sidecar_path

    model = resolve_model_path(args.model)
    index = None if args.save_video is None else str(args.save_video) + FRAME_INDEX_SUFFIX
    # the video's lock file (held for the run, removed at its end) as well: a results file of that name was
    # refused as "being written by another process", the run's own video holding it
    if args.save_video is not None and working_folder_gone() and not os.path.isabs(args.save_video):
        raise OptionError(gone_working_folder(f"--save-video {name(args.save_video)}"))
    lock = None if args.save_video is None else os.path.realpath(args.save_video) + LOCK_SUFFIX
    # the snapshots folder too, when it is still to be made: named like the results file or video, it was
    # taken (that file did not exist yet) and the Snapshot button failed in the middle of the session (one
    # that exists is judged by SnapshotSink: a file there is "not a folder")
    snapshots = (args.snapshots or "idc-snapshots") if (args.serve or args.show) else None
    if snapshots is not None and os.path.lexists(snapshots):
        snapshots = None
    # the profile is an input too: an empty profile file given as --record became a results file, and every
    # later run with that profile failed ("not valid TOML")
    profile = None
    if getattr(args, "profile", None):
        from ..profiles import ProfileError, profile_path

        try:
            profile = profile_path(args.profile)
        except ProfileError:
            profile = None  # a bad name is said where the profile is read
    check_distinct([("--source", args.source), ("--model", model), ("the model's sidecar", sidecar_path(model)),
                    ("--profile", profile)],
                   [("--record", args.record), ("--save-video", args.save_video), ("the video's frame index", index),
                    ("the video's lock file", lock), ("--snapshots", snapshots)])


class _StopOnce:
    """Ctrl-C, SIGTERM, SIGHUP and SIGQUIT for the whole of ``run``, from before the model and source
    load: each raises KeyboardInterrupt (naming the signal, :func:`idc_edge.stops.raise_stop`) until the
    session has taken one (its ``stopping``), which it turns into "interrupted" after finalising every
    output; from then on they are only acknowledged. ``session`` is None until the run's session is
    made (a stop before that ends the command, see :func:`cmd_run`); ``cause`` names the last stop
    signal taken. One arriving while a frame is handed to the outputs
    (the session's ``delivering``) stops the run once every output has that frame
    (:meth:`Session.request_stop`): cut in between, the results held a frame the video did not. A
    second Ctrl-C pressed while the outputs close or the process exits printed a traceback or ended
    the process by the signal (exit -2 or -15, not 0).
    A stop that lands in a finaliser (a garbage-collection callback) is lost without Python's
    "Exception ignored" traceback, and the next signal stops the run. Once stopping, the signals stay
    ignored until the process ends; otherwise the handlers are restored.
    """

    def __init__(self, session=None):
        self.session = session
        self.cause = "Ctrl-C"
        self._said = False
        self._previous: dict = {}
        self._unraisable = None

    def __enter__(self) -> "_StopOnce":
        from ..session import STOP_SIGNALS

        for s in STOP_SIGNALS:
            try:
                self._previous[s] = signal.signal(s, self._handle)
            except (ValueError, OSError):  # not the main thread: signals stay as they are
                pass
        self._unraisable, sys.unraisablehook = sys.unraisablehook, self._drop_interrupt
        return self

    def _handle(self, signum, frame) -> None:
        from ..stops import signal_name

        if self.session is not None and self.session.summary is not None:
            return  # the run has ended, its outputs final: nothing left to stop (its summary line prints)
        if self.session is None or not self.session.stopping:
            self.cause = "Ctrl-C" if signum == signal.SIGINT else signal_name(signum)
            if self.session is not None and self.session.delivering:
                self.session.request_stop()
                return
            raise KeyboardInterrupt(self.cause)
        if not self._said:  # os.write: a print from a signal handler could re-enter a half-done print
            self._said = True
            try:
                os.write(2, b"idc-edge: already stopping: saving the results and the video\n")
            except OSError:
                pass

    def _drop_interrupt(self, unraisable) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            self._unraisable(unraisable)

    def __exit__(self, exc_type, *exc) -> bool:
        sys.unraisablehook = self._unraisable
        stopping = (self.session is not None and self.session.stopping) or (
            exc_type is not None and issubclass(exc_type, KeyboardInterrupt))
        for s, handler in self._previous.items():
            # stopping: ignored from here to the end (Python puts its own handlers back to the
            # default while it shuts down, which a late signal would then end by; ignored ones it leaves)
            signal.signal(s, signal.SIG_IGN if stopping else handler)
        return False


def build_config(args):
    """The :class:`~idc_edge.session.RunConfig` of parsed ``run`` arguments (validated there)."""
    from ..colour import WhiteBalance
    from ..detector import DetectorOptions
    from ..session import RunConfig
    from .camera_setup import resolve

    setup = resolve(args)
    profile = setup.profile
    balance = None
    if profile is not None and profile.white_gains_rgb and not args.no_white_balance:
        balance = WhiteBalance(profile.white_gains_rgb)
    options = DetectorOptions(**{**bound_values(args, RUN_FLAGS, "detector"), "um_per_px": setup.um_per_px,
                                 "um_per_px_from": setup.um_per_px_from},
                              white_balance=balance, **gates_off(args.no_gates))
    return RunConfig(**{**bound_values(args, RUN_FLAGS, "run"), "camera_timeout_s": setup.camera_timeout_s},
                     source=setup.source, camera=setup.camera, detector=options, camera_mode=setup.mode,
                     camera_controls=setup.controls, profile=profile)


def gates_off(off: bool) -> dict:
    """DetectorOptions fields that switch the focus, exposure, colour and noise gates off (none when ``off`` is False)."""
    from ..focus import ColourOptions, ExposureOptions, FocusOptions, NoiseOptions

    return {"focus": FocusOptions(enabled=False), "exposure": ExposureOptions(enabled=False),
            "colour": ColourOptions(enabled=False), "noise": NoiseOptions(enabled=False)} if off else {}


def build_sinks(args, config) -> list:
    """The outputs the arguments ask for, in the order they are fed: results first (a frame is on
    disk before anything reports it), then video, snapshots, window, browser, progress line. A
    failure or a stop while they are made closes the ones already made (a video's name lock, the
    live view's port)."""
    from ..sinks import JsonlSink, LiveView, ProgressSink, SnapshotSink, VideoSink, WindowSink, parse_address

    made: list = []
    try:
        video = VideoSink(args.save_video) if args.save_video else None  # first: another program's video is
        if video is not None:                                             # refused before a results file is made
            made.append(video)
        if args.record:
            made.insert(0, JsonlSink(args.record))
        snapshot = SnapshotSink(args.snapshots or "idc-snapshots", style=config.overlay) if (args.serve or args.show) else None
        if snapshot is not None:
            made.append(snapshot)
        if args.show:
            made.append(WindowSink(snapshot=snapshot))
        if args.serve:
            host, port = parse_address(args.serve)
            made.append(LiveView(host, port, snapshot=snapshot, style=config.overlay))  # its address: once the source is open
        if not args.quiet:
            made.append(ProgressSink())
    except BaseException:
        _close_quietly(made)
        raise
    return made


def _close_quietly(closers) -> None:
    """Close sinks (and a source) that never ran, after a failure or a stop before the run: a fault
    closing one is logged, never hides the error or stop being raised."""
    from ..session import _close_all

    _close_all(list(closers))


def cmd_run(args) -> int:
    """parse → config → sinks → :func:`~idc_edge.session.run_session` → exit code (0, or the fault
    raised after the summary line: the caller maps it to 2, or 3 for a lost camera).

    The run's stop signals are taken first (:class:`_StopOnce`): a stop before the first frame (while
    the model or the source loads, a camera opens, or before a frame reaches the outputs) closes
    every output made so far (a results file keeps its header only) and ends with one line saying
    the run was stopped before its first frame (:class:`~idc_edge.stops.StoppedEarly`, exit 130);
    a stop after it finalises the outputs and exits 0."""
    from ..stops import StoppedEarly, stopped_line

    with _StopOnce() as stop:
        try:
            session = _prepare(args, stop)
        except KeyboardInterrupt as e:
            raise StoppedEarly(stop.cause, stopped_line("run", e)) from None
        try:
            session.run()
        except IdcEdgeError:
            if session.summary is None:
                raise  # before the first frame: bad model or source, nothing to summarise
            _print_summary(session.summary)
            raise
        summary = session.summary
        if summary.stopped == "interrupted" and not summary.frames:  # nothing reached an output
            raise StoppedEarly(stop.cause, stopped_line("run", KeyboardInterrupt(stop.cause), summary.sink_notes))
        _print_summary(summary)  # with the handlers still taken: a stop now is no stop "before the first frame"
        _refuse_a_run_over_nothing(session)
    return 0


def _prepare(args, stop: _StopOnce):
    """The run's :class:`~idc_edge.session.Session` (its outputs made, a camera opened), set as
    ``stop.session``; on a failure or a stop, everything made so far is closed before it is raised."""
    from dataclasses import replace

    from ..session import Session, with_decode_factor
    from ..sources.mjpeg import reduction_for
    from .camera_setup import say_granted

    _check_outputs(args)
    config = build_config(args)
    sinks = build_sinks(args, config)  # a window without a display or a port in use fails here, first
    source = None
    try:
        if config.camera is not None:  # a camera says the mode it was granted before the run starts
            if config.detector.um_per_px and not args.full_decode:
                from ..classifier import resolve_model_path
                from ..spec import read_spec

                model_um = read_spec(resolve_model_path(config.detector.model_path)).um_per_px  # bad model: its error
                display = any(s.needs_overlay or s.needs_image for s in sinks)
                config = replace(config, reduce_mjpeg=reduction_for(config.detector.um_per_px, model_um, display))
            source = config.open_source()
            say_granted(source, config.detector.um_per_px)
            config = with_decode_factor(config, source)
            if getattr(source, "decode_factor", 1) > 1:
                print(f"{source.description}: MJPG decoded at 1/{source.decode_factor} size "
                      f"({config.detector.um_per_px:g} um/px; --full-decode for full size)", file=sys.stderr, flush=True)
        stop.session = Session(config, sinks, source=source)
        _say_live_view(sinks)
    except BaseException:
        _close_quietly(sinks + ([source] if source is not None else []))
        raise
    return stop.session


def _say_live_view(sinks) -> None:
    """The live view's address, once the run is sure to start (its port was taken when it was made, so a
    port in use fails first; a camera that cannot be opened is then one line, not an address and a line)."""
    from ..sinks import LiveView

    for view in sinks:
        if isinstance(view, LiveView):
            print(f"live view: {view.url} (open it in a browser; Ctrl-C ends the run)"
                  + ("" if view.host in ("127.0.0.1", "localhost", "::1") else
                     "; other machines on the network can watch: use on a trusted network only"),
                  file=sys.stderr, flush=True)


def _refuse_a_run_over_nothing(session) -> None:
    """A run that ended because its source ended without one usable frame (a video of no frames, a
    folder of broken images) classified nothing: that is bad input, not a success (exit 2)."""
    summary = session.summary
    if summary.frames or summary.stopped != "end":
        return
    what = session.info.source if session.info is not None else "the source"
    skipped = f" ({summary.skipped} {summary.skipped_what} skipped)" if summary.skipped else ""
    raise SourceError(f"{what} gave no frame to classify{skipped}: pass a video, image or folder that holds "
                      "readable pictures")


def _print_summary(summary) -> None:
    if summary.stopped == "interrupted":
        print("idc-edge: interrupted; results so far are saved", file=sys.stderr)
    print(summary.line(), file=sys.stderr)
