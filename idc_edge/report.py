"""A readable summary of a results file: per session the fields viewed, the IDC area over time,
the frames with most IDC (pictures from the session's snapshots or saved video), settings and model.

    sessions = summarize("results.jsonl")          # one SessionSummary per run in the file
    html = render_html(sessions, "results.jsonl")  # one self-contained page (plot as inline SVG,
                                                   # pictures as data: URIs)

Pure functions on the records do the counting (:func:`fields_viewed`, :func:`top_frames`,
:func:`svg_plot`); only :func:`summarize` reads files (the results, the snapshots' JSON and PNGs,
the video). No plotting library: the plot is SVG written here.
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import cv2
import numpy as np

from .errors import IdcEdgeError, RecordError
from .fileio import is_regular_file, name, opencv_path, printable, read_bytes, read_image
from .record import FRAME_FIELDS, RecordedSession, check_fields, read_sessions
from .sinks.video import frame_index_session, read_frame_index

#: a frame counts as "still" (the stage at rest on one field) when at least this share of its tissue
#: patches kept their score from an earlier frame (motion-aware reuse)
STILL_FRACTION = 0.5
THUMB_WIDTH_PX = 480


@dataclass(frozen=True)
class FieldViewed:
    """A stretch where the stage rested on one field: from ``start_s`` (seconds from the session's
    first frame) for ``duration_s``, ``frames`` frames, the largest IDC area (mm²) and share of tissue."""

    start_s: float
    duration_s: float
    frames: int
    max_idc_mm2: Optional[float]
    max_idc_percent: float


@dataclass(frozen=True)
class Picture:
    """A frame worth looking at: its ``index``, ``time_s`` from the session's start, IDC area (mm²)
    and % of tissue, and a JPEG of it (None when neither a snapshot nor the video has it; then
    ``no_picture`` may say why, e.g. the video at the header's name is another session's)."""

    index: int
    time_s: float
    idc_mm2: Optional[float]
    idc_percent: float
    jpeg: Optional[bytes] = None
    from_: Optional[str] = None   # "snapshot" or "video"
    no_picture: Optional[str] = None


#: Frame flags that say the tissue mask may have lost the tissue (the reason a report gives): such a
#: frame without tissue patches was not called, not empty (both are read, :data:`~idc_edge.record.FRAME_FIELDS`).
TISSUE_HIDDEN = {"no_colour": "no_colour", "faint_colour": "colour", "washed_out": "exposure"}


def _hidden_tissue(record: dict) -> Optional[str]:
    """The no-call reason of a frame record without tissue patches whose flags say its tissue may have
    been lost to the mask (no colour at all, colours too faint, washed out by stray light); None otherwise."""
    if int(record.get("tissue_patches") or 0):
        return None
    return next((reason for flag, reason in TISSUE_HIDDEN.items() if record.get(flag) is True), None)


def frame_was_called(record: dict) -> bool:
    """False for a frame record whose tissue patches were all no call (nothing judged), or that shows
    no tissue because its colours were too faint or stray light washed it out; True otherwise,
    including frames without tissue and records written before the gates existed."""
    tissue = int(record.get("tissue_patches") or 0)
    if not tissue:
        return _hidden_tissue(record) is None
    no_call = record.get("no_call_patches") or {}
    return sum(int(v or 0) for v in no_call.values()) < tissue


def tissue_judged(record: dict) -> bool:
    """True for a frame record with at least one tissue patch judged (classified or keeping a reused score):
    only such a frame's ``idc_fraction`` and IDC area say something of tissue (both are 0 for a frame of
    glass or of no call)."""
    return int(record.get("tissue_patches") or 0) > 0 and frame_was_called(record)


#: the record's no-call reasons (``no_call_patches`` keys) in the words a report uses
NO_CALL_WORDS = {"out_of_focus": "out of focus", "exposure": "exposure", "ink": "marker ink",
                 "no_colour": "no colour", "colour": "colour", "noise": "noise"}


def no_call_reasons(records: Sequence[dict]) -> dict[str, int]:
    """Frames with tissue but no call, per reason (the reason that took most of the frame's
    patches), in :data:`NO_CALL_WORDS` order; reasons no frame had are left out."""
    counts: dict[str, int] = {}
    for r in records:
        if frame_was_called(r):
            continue
        no_call = {k: int(v or 0) for k, v in (r.get("no_call_patches") or {}).items()}
        # a frame without colour is counted as that, also when the mask was off and the colour gate took its windows
        reason = _hidden_tissue(r) or ("no_colour" if r.get("no_colour") is True else max(no_call, key=no_call.get))
        counts[reason] = counts.get(reason, 0) + 1
    order = list(NO_CALL_WORDS) + sorted(set(counts) - set(NO_CALL_WORDS))
    return {k: counts[k] for k in order if k in counts}


def _reasons_text(reasons: dict[str, int]) -> str:
    return ", ".join(f"{NO_CALL_WORDS.get(k, k)} {n}" for k, n in reasons.items())


@dataclass(frozen=True)
class SessionSummary:
    """One run of a results file, summarised."""

    number: int
    header: Optional[dict]
    frames: int
    duration_s: float
    mean_idc_percent: Optional[float]  # over frames with tissue judged; None when no frame had any
    max_idc_mm2: Optional[float]
    frames_with_idc: int
    frames_without_call: int
    no_call_reasons: dict
    fields: tuple
    times_s: tuple
    idc_mm2: tuple
    tissue_mm2: tuple
    idc_percent: tuple
    top: tuple
    snapshots: tuple
    clock_steps_back: int = 0   # times a frame's time was earlier than the one before (see retimed)
    repeated_frame_copies: int = 0   # lines copying an earlier line of the same frame, counted once (without_copies)
    repeated_frame_numbers: int = 0  # lines reusing a frame number with results of their own, counted

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, pictures left out (their frame numbers and times kept)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("times_s", "idc_mm2", "tissue_mm2", "idc_percent", "top",
                                                                  "snapshots", "fields")}
        d["fields"] = [asdict(f) for f in self.fields]
        for key in ("top", "snapshots"):
            d[key] = [{k: v for k, v in asdict(p).items() if k != "jpeg"} for p in getattr(self, key)]
        return d


# -- pure counting -------------------------------------------------------------------------------

def _area(record: dict) -> Optional[float]:
    v = record.get("idc_area_mm2")
    return float(v) if isinstance(v, (int, float)) else None


def session_times(times_s: Sequence[float]) -> tuple[list[float], int]:
    """Frame times (seconds) that never go back, and how many times they did.

    A frame earlier than the one before (the wall clock set back mid-session: NTP on a board without
    a real-time clock) is placed one typical frame gap (the median of the forward gaps) after it, and
    later frames keep their spacing from there, as the saved video gives such a frame the next slot
    (:class:`~idc_edge.sinks.video.VideoSink`). Equal times are left as they are."""
    gaps = [b - a for a, b in zip(times_s, times_s[1:]) if b > a]
    gap = float(np.median(gaps)) if gaps else 0.0
    out: list[float] = []
    shift, back = 0.0, 0
    for t in times_s:
        if out and t + shift < out[-1]:
            shift = out[-1] + gap - t
            back += 1
        out.append(t + shift)
    return out, back


def retimed(records: Sequence[dict]) -> tuple[list[dict], int]:
    """``records`` with their ``time`` from :func:`session_times` (the records themselves when
    their times never go back), and how many times they went back."""
    times, back = session_times([float(r["time"]) for r in records])
    if not back:
        return list(records), 0
    return [dict(r, time=t) for r, t in zip(records, times)], back


@dataclass(frozen=True)
class RepeatedFrames:
    """Frame lines of one session whose frame number an earlier line of it already has.

    Attributes:
        copies: lines equal in every summarised field to an earlier line (a line pasted twice, a
            file joined by hand): the same frame, counted once.
        reused: lines with another frame's number but results of their own (a caller's own
            ``FrameSource`` may number frames as it likes): counted as frames of their own.
        example: the first frame number given more than once, and how many lines give it.
    """

    copies: int = 0
    reused: int = 0
    example: Optional[tuple[int, int]] = None


def without_copies(records: Sequence[dict]) -> tuple[list[dict], RepeatedFrames]:
    """``records`` with each line that copies an earlier one of the same frame number left out, and
    what repeated (:class:`RepeatedFrames`). Nothing is refused and no order is imposed: frame
    numbers out of order, or reused with other results, are kept as written.

    Only the lines of frame numbers given more than once are compared (as canonical JSON): a session
    of hours, whose numbers do not repeat, is not held a second time as text."""
    lines_of: dict[int, int] = {}
    for r in records:
        index = int(r["index"])
        lines_of[index] = lines_of.get(index, 0) + 1
    first = next((i for i, n in lines_of.items() if n > 1), None)
    if first is None:
        return list(records), RepeatedFrames()
    seen: dict[int, list[str]] = {}  # repeated frame number -> the records given it, as canonical JSON
    kept, copies, reused = [], 0, 0
    for r in records:
        index = int(r["index"])
        if lines_of[index] > 1:
            text = json.dumps(r, sort_keys=True, default=str)
            earlier = seen.setdefault(index, [])
            if text in earlier:
                copies += 1
                continue
            if earlier:
                reused += 1
            earlier.append(text)
        kept.append(r)
    return kept, RepeatedFrames(copies, reused, (first, lines_of[first]))


def repeated_text(number: int, repeated: RepeatedFrames) -> str:
    """The warning for a session whose frame numbers repeat (empty when none do)."""
    if not (repeated.copies or repeated.reused):
        return ""
    index, times = repeated.example
    parts = []
    if repeated.copies:
        parts.append(f"{repeated.copies} exact copy(ies) of an earlier line (a line pasted twice, a file joined by "
                     "hand?) counted once")
    if repeated.reused:
        parts.append(f"{repeated.reused} with results of their own counted as frames of their own (a frame source "
                     "that numbers frames as it likes?)")
    return (f"session {number}: {repeated.copies + repeated.reused} frame line(s) repeat a frame number of the "
            f"session, e.g. frame {index} is given {times} times: " + "; ".join(parts))


def fields_viewed(records: Sequence[dict], still_fraction: float = STILL_FRACTION,
                  min_duration_s: float = 0.5) -> list[FieldViewed]:
    """The stretches where the stage rested on one field: runs of frames with tissue whose share of
    reused patches is at least ``still_fraction``, lasting ``min_duration_s`` or longer. Needs
    motion-aware reuse (on by default); a run without it (``reuse=False``) has no still frames to find."""
    if not records:
        return []
    t0 = float(records[0]["time"])
    fields, run = [], []

    def close_run():
        if run and float(run[-1]["time"]) - float(run[0]["time"]) >= min_duration_s:
            areas = [a for a in (_area(r) for r in run) if a is not None]
            fields.append(FieldViewed(start_s=round(float(run[0]["time"]) - t0, 3),
                                      duration_s=round(float(run[-1]["time"]) - float(run[0]["time"]), 3),
                                      frames=len(run), max_idc_mm2=max(areas) if areas else None,
                                      max_idc_percent=round(100 * max(r["idc_fraction"] for r in run), 2)))

    for r in records:
        tissue = r.get("tissue_patches") or 0  # null (not measured) as missing
        if tissue and (r.get("reused_patches") or 0) >= still_fraction * tissue:
            run.append(r)
        else:
            close_run()
            run = []
    close_run()
    return fields


def top_frames(records: Sequence[dict], k: int = 6, min_gap_s: float = 2.0) -> list[dict]:
    """The ``k`` records with the largest IDC area (or share of tissue when areas are missing), at
    least ``min_gap_s`` seconds apart so that one field does not fill the list; in time order."""
    def key(r):
        a = _area(r)
        return (a if a is not None else 0.0, r["idc_fraction"])

    chosen: list[dict] = []
    for r in sorted(records, key=key, reverse=True):
        if len(chosen) >= k or key(r) <= (0.0, 0.0):
            break
        if all(abs(float(r["time"]) - float(c["time"])) >= min_gap_s for c in chosen):
            chosen.append(r)
    return sorted(chosen, key=lambda r: float(r["time"]))


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / max(1, ticks)
    mag = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), raw)


def axis_ticks(span: float, ticks: int, cover: bool) -> tuple[float, list[float]]:
    """(the axis's end, its tick values from 0) for values from 0 to ``span``, about ``ticks`` round
    steps apart; the end is ``span`` itself, or with ``cover`` the first tick at or above it. A span
    that is not a finite number above 0 is taken as 1, and an end that would not be a finite number
    (values near the largest float) is ``span`` with ticks at 0 and ``span``: always finite, at most
    a few dozen ticks, never a loop that cannot end."""
    span = span if math.isfinite(span) and span > 0 else 1.0
    step = _nice_step(span, ticks)
    steps = math.ceil(span / step) if cover else math.floor(span / step + 1e-9)
    end = step * steps if cover else span
    if not (math.isfinite(end) and math.isfinite(step) and step > 0 and steps <= 4 * ticks):
        return span, [0.0, span]
    return end, [k * step for k in range(steps + 1)]


# -- HTML: every value goes into the page through markup() ---------------------------------------------

class Markup(str):
    """HTML made by :func:`markup` (or by :func:`svg_plot`): put into other markup as it is."""


class _Escaped:
    """One value for a :func:`markup` template: formatted by the field's spec, then HTML-escaped
    (a :class:`Markup` value is put in as it is)."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value

    def __format__(self, spec: str) -> str:
        text = format(self.value, spec)
        return text if isinstance(self.value, Markup) else html.escape(text)


def markup(template: str, *values: Any) -> Markup:
    """``template`` (HTML written in this module, never text from a file) with its ``{}`` fields
    filled by ``values``, each formatted by its field's spec (``{:.1f}``) and HTML-escaped. The one
    way values enter the report's page: a results file's text cannot become markup.

        markup("<td>{}</td><td>{:.3f}</td>", name, threshold)
    """
    return Markup(template.format(*map(_Escaped, values)))


def _joined(parts: Iterable[Markup]) -> Markup:
    return Markup("".join(parts))


def svg_plot(times_s: Sequence[float], series: Sequence[tuple[str, Sequence[Optional[float]], str]],
             y_label: str, width: int = 860, height: int = 260, marks: Sequence[float] = (),
             bands: Sequence[tuple[float, float]] = ()) -> Markup:
    """An SVG line plot: ``series`` are (name, values, CSS colour) over ``times_s`` (seconds); None
    values break a line; ``marks`` are times drawn as dots on the first series, ``bands`` (start,
    end) shaded behind. At most ~``width`` points per line (the largest value per pixel column)."""
    left, right, top, bottom = 56, 12, 14, 34
    pw, ph = width - left - right, height - top - bottom
    t = np.asarray(times_s, float)
    t_max, t_ticks = axis_ticks(float(t.max()) if t.size else 0.0, 8, cover=False)
    values = [np.asarray([np.nan if v is None else v for v in vals], float) for _, vals, _ in series]
    finite = [v[np.isfinite(v)] for v in values]
    y_top, y_ticks = axis_ticks(max([float(f.max()) for f in finite if f.size] + [0.0]), 5, cover=True)
    x = lambda s: left + pw * s / t_max  # noqa: E731
    y = lambda v: top + ph * (1 - v / y_top)  # noqa: E731
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="11" role="img">']
    for a, b in bands:
        out.append(f'<rect x="{x(a):.1f}" y="{top}" width="{max(1.0, x(b) - x(a)):.1f}" height="{ph}" '
                   'fill="#e8eef8"/>')
    for v in y_ticks:
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    for s in t_ticks:
        out.append(f'<line x1="{x(s):.1f}" x2="{x(s):.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#555"/>'
                   f'<text x="{x(s):.1f}" y="{top + ph + 16}" text-anchor="middle">{s:g}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#555"/>')
    out.append(f'<text x="{left + pw / 2:.0f}" y="{height - 4}" text-anchor="middle">seconds from the first frame'
               '</text>')
    out.append(markup('<text transform="translate(12,{:.0f}) rotate(-90)" text-anchor="middle">{}</text>',
                      top + ph / 2, y_label))
    columns = np.clip(((t / t_max) * pw).astype(int), 0, pw) if t.size else np.zeros(0, int)
    for (name, _, colour), vals in zip(series, values):
        points, segments = [], []
        last_col = None
        for col, tv, vv in zip(columns, t, vals):
            if not np.isfinite(vv):
                if points:
                    segments.append(points)
                points, last_col = [], None
                continue
            if col == last_col and points and vv <= points[-1][1]:
                continue  # one point per pixel column: keep its largest value
            if col == last_col and points:
                points[-1] = (tv, vv)
            else:
                points.append((tv, vv))
            last_col = col
        if points:
            segments.append(points)
        for seg in segments:
            path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in seg)
            out.append(markup('<polyline fill="none" stroke="{}" stroke-width="1.6" points="{}"><title>{}</title>'
                              '</polyline>', colour, path, name))
    if series and marks:
        first = values[0]
        for m in marks:
            i = int(np.argmin(np.abs(t - m))) if t.size else 0
            if t.size and np.isfinite(first[i]):
                out.append(f'<circle cx="{x(t[i]):.1f}" cy="{y(first[i]):.1f}" r="4" fill="none" stroke="#000"/>')
    legend_x = left + 8
    for name, _, colour in series:
        out.append(markup('<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="3"/><text x="{}" y="{}">{}'
                          '</text>', legend_x, legend_x + 18, top + 10, top + 10, colour, legend_x + 22, top + 14, name))
        legend_x += 30 + 7 * len(name)
    out.append("</svg>")
    return _joined(out)


# -- reading pictures ---------------------------------------------------------------------------------

def _thumbnail(image: np.ndarray) -> bytes:
    if image.shape[1] > THUMB_WIDTH_PX:
        h = max(1, round(image.shape[0] * THUMB_WIDTH_PX / image.shape[1]))
        image = cv2.resize(image, (THUMB_WIDTH_PX, h), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return data.tobytes() if ok else b""


def _snapshot_is_this_sessions(meta: dict, header: dict, times: dict[int, float]) -> bool:
    """True when a snapshot's JSON was taken in the session of ``header`` (``times``: the session's
    record times by frame index). Both carry a session id: the ids agree. Neither does (written
    before session ids): its whole session header is this one and its frame's time is this session's
    record's (the start time alone, to the second, let two runs started in one second take each
    other's snapshots). One without an id is another version's run, never this one."""
    theirs, frame = meta["session"]["session"], meta["frame"]
    if theirs.get("id") is not None or header.get("id") is not None:
        return theirs.get("id") == header.get("id")
    return theirs == header and times.get(int(frame["index"])) == float(frame["time"])


def _snapshots(header: dict, records: Sequence[dict]) -> dict[int, tuple[dict, Path]]:
    """This session's snapshots by frame index: (their JSON, the overlay PNG); see
    :func:`_snapshot_is_this_sessions` for how a snapshot is tied to its session."""
    folder = ((header.get("outputs") or {}).get("snapshots") or {}).get("folder")
    found: dict[int, tuple[dict, Path]] = {}
    if not folder or not Path(folder).is_dir():
        return found
    times = {int(r["index"]): float(r["time"]) for r in records}
    for meta_path in sorted(Path(folder).glob("idc-*.json")):
        try:  # read as any file: a FIFO or /dev/zero under a snapshot's name is skipped, not waited on
            meta = json.loads(read_bytes(meta_path, "snapshot", RecordError).decode("utf-8"))
            png = meta_path.with_name(meta["snapshot"]["png"])
            check_fields(meta["frame"], FRAME_FIELDS, f"snapshot {name(meta_path)}")
            same = _snapshot_is_this_sessions(meta, header, times)
        except (IdcEdgeError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
            continue
        if same and is_regular_file(png):
            found[int(meta["frame"]["index"])] = (meta, png)
    return found


def _read_picture(path) -> Optional[np.ndarray]:
    """A saved snapshot as BGR, or None when it cannot be read (missing, not an image, too large)."""
    try:
        return read_image(path, "snapshot", flags=cv2.IMREAD_COLOR)
    except IdcEdgeError:
        return None


#: why a card has no picture from the session's video (the video is there, but not shown to be its)
VIDEO_REPLACED = "the video was replaced by a later run (it is another session's)"
VIDEO_UNVERIFIED = ("picture not verified: the video's frame index names no session (missing, or saved by an older "
                    "idc-edge), so the video may be another run's")


def _video_index(video: dict) -> tuple[dict[int, int], Optional[str]]:
    """The frame index beside the session's video: ({record index: video frame}, the session id it
    names), empty and None when it is missing or unreadable."""
    frames = video.get("frames")
    if not isinstance(frames, str) or not is_regular_file(frames):
        return {}, None
    try:
        data = read_bytes(frames, "video frame index", RecordError)
    except IdcEdgeError:
        return {}, None
    return read_frame_index(data), frame_index_session(data)


def _video_frames(header: dict, t0: float, records: Sequence[dict]) -> tuple[list[Optional[np.ndarray]], Optional[str]]:
    """Frames of the session's saved video showing the given records (None where unreadable), and
    why there are none when the video on disk is not shown to be this session's.

    The video's frame index (written beside it, see :class:`~idc_edge.sinks.video.VideoSink`)
    names the session that wrote the video and says which frame shows a record (one it does not
    list is found by its time since the first record). The video is used only when the index names
    this session's id: a later run saving to the same name replaces both, and every run numbers
    its frames from 0, so nothing else tells one session's video from another's. A video without
    an id (an older idc-edge's, or one whose index could not be written) is not used either."""
    video = (header.get("outputs") or {}).get("video") or {}
    path = video.get("path")
    if not isinstance(path, str) or not path or not os.path.isfile(path):
        return [None] * len(records), None
    index, session_id = _video_index(video)
    if session_id is None:
        return [None] * len(records), VIDEO_UNVERIFIED
    if session_id != header.get("id"):
        return [None] * len(records), VIDEO_REPLACED
    wanted = [(index.get(int(r["index"])), float(r["time"]) - t0) for r in records]
    with opencv_path(path, "video") as where:  # any file name (OpenCV crashes on some)
        return _frames_at(cv2.VideoCapture(where), wanted), None


def _frames_at(cap, wanted: Sequence[tuple[Optional[int], float]]) -> list[Optional[np.ndarray]]:
    """The frames at (video frame, or None to use the seconds after it) of each wanted picture."""
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        out = []
        for frame_no, seconds in wanted:
            image = None
            if frame_no is None and fps > 0:
                frame_no = max(0, round(seconds * fps))
            if frame_no is not None and cap.isOpened():
                cap.set(cv2.CAP_PROP_POS_FRAMES, frame_no)
                ok, frame = cap.read()
                image = frame if ok else None
            out.append(image)
        return out
    finally:
        cap.release()


# -- summarising --------------------------------------------------------------------------------------

def summarize_session(session: RecordedSession, number: int, pictures: bool = True, k: int = 6) -> SessionSummary:
    """Summarise one :class:`~idc_edge.record.RecordedSession` (pictures read when ``pictures``).

    Lines that copy an earlier line of the same frame are counted once, and frame numbers given to
    more than one line are said in one warning (:func:`without_copies`)."""
    unique, repeated = without_copies(session.records)
    if repeated.example is not None:
        warnings.warn(repeated_text(number, repeated), stacklevel=2)
    records, steps_back = retimed(unique)  # every time below counts on from the one before
    header = session.header
    times = [float(r["time"]) for r in records]
    t0 = times[0] if times else 0.0
    rel = tuple(round(t - t0, 3) for t in times)
    areas = tuple(_area(r) for r in records)
    tissue = tuple(float(r["tissue_area_mm2"]) if isinstance(r.get("tissue_area_mm2"), (int, float)) else None
                   for r in records)
    # the largest IDC area among frames that judged tissue: a session of glass or of no call has none (it said
    # "largest 0.00 mm²", as if no IDC had been seen)
    known = [a for a, r in zip(areas, records) if a is not None and tissue_judged(r)]
    snaps = _snapshots(header, records) if (pictures and header) else {}
    chosen = top_frames(records, k)
    video, no_video = _video_frames(header, t0, chosen) if (pictures and header) else ([], None)
    top = []
    for i, r in enumerate(chosen):
        jpeg, source = None, None
        if int(r["index"]) in snaps:
            image = _read_picture(snaps[int(r["index"])][1])
            jpeg, source = (_thumbnail(image), "snapshot") if image is not None else (None, None)
        elif video and video[i] is not None:
            jpeg, source = _thumbnail(video[i]), "video"
        top.append(Picture(int(r["index"]), round(float(r["time"]) - t0, 3), _area(r),
                           round(100 * r["idc_fraction"], 2), jpeg, source, None if jpeg else no_video))
    snap_pictures = []
    for index, (meta, png) in sorted(snaps.items()):
        image = _read_picture(png)
        f = meta.get("frame", {})
        snap_pictures.append(Picture(index, round(float(f.get("time", t0)) - t0, 3), _area(f),
                                     round(100 * float(f.get("idc_fraction", 0.0)), 2),
                                     _thumbnail(image) if image is not None else None, "snapshot"))
    # frames whose tissue was all no call (out of focus, bad exposure, colour, noise) say nothing about IDC:
    # they are counted apart, never averaged in as 0 % IDC
    called = [r for r in records if frame_was_called(r)]
    # the share of tissue is a frame's only when it judged tissue: a frame of bare glass (the stage moving between
    # fields) has none, and averaging its 0 in read a session of 40 % IDC on tissue as 20 % when half its frames
    # showed glass; a session that judged no tissue at all has no mean (it said 0.0 %, as if nothing were IDC)
    judged = [r["idc_fraction"] for r in records if tissue_judged(r)]
    return SessionSummary(
        number=number, header=header, frames=len(records), duration_s=round(rel[-1], 3) if rel else 0.0,
        mean_idc_percent=round(100 * float(np.mean(judged)), 2) if judged else None,
        max_idc_mm2=max(known) if known else None, frames_with_idc=sum(1 for r in records if r.get("idc_patches")),
        frames_without_call=len(records) - len(called), no_call_reasons=no_call_reasons(records),
        fields=tuple(fields_viewed(records)), times_s=rel, idc_mm2=areas, tissue_mm2=tissue,
        idc_percent=tuple(round(100 * r["idc_fraction"], 3) for r in records), top=tuple(top),
        snapshots=tuple(snap_pictures), clock_steps_back=steps_back, repeated_frame_copies=repeated.copies,
        repeated_frame_numbers=repeated.reused)


def summarize(path, pictures: bool = True) -> list[SessionSummary]:
    """Every session of a results file, summarised.

    Raises:
        RecordError: the file cannot be read or is not a results file.
    """
    return [summarize_session(s, i + 1, pictures) for i, s in enumerate(read_sessions(path, keep=FRAME_FIELDS))]  # the fields summarised


# -- rendering ----------------------------------------------------------------------------------------

def _context_text(model: dict) -> str:
    """How the session's windows were decided, for the threshold's line: with their neighbours (the
    header's ``model.context``) or, in results files from before it was recorded, nothing."""
    context = model.get("context")
    if not isinstance(context, dict):
        return ""
    return f" on each window read with its neighbours (sigma {context.get('sigma_px')} px)"


def _fmt_area(v: Optional[float]) -> str:
    return "–" if v is None else f"{v:.2f} mm²"


def _fmt_mean(v: Optional[float]) -> str:
    return "– (no tissue judged)" if v is None else f"{v:.1f} %"


def _when(header: Optional[dict]) -> str:
    if not header:
        return "no session header (written by an older idc-edge)"
    try:
        return datetime.strptime(header["started"], "%Y-%m-%dT%H:%M:%SZ").strftime("%Y-%m-%d %H:%M:%S UTC")
    except (KeyError, ValueError):
        return str(header.get("started", "?"))


def _fields_text(s: SessionSummary) -> str:
    if s.header and (s.header.get("options") or {}).get("reuse") is False:
        return "not known (the run had reuse off: stillness is found from reused patches)"
    return f"{len(s.fields)} (stage at rest ≥ 0.5 s)"


def _scale_text(header: dict) -> str:
    """The session's scale in words: the frames' µm per pixel, the model's and the side of the
    square each patch stands for (µm); the last two left out when the header (an older idc-edge's)
    lacks them."""
    um, model_um, cell_um = (_number_text(header.get(k)) for k in ("um_per_px", "model_um_per_px", "cell_um"))
    more = ([f"model {model_um} µm/px"] if model_um is not None else []) + \
        ([f"each patch stands for {cell_um} µm × {cell_um} µm"] if cell_um is not None else [])
    return f"{um} µm per pixel" + (f" ({'; '.join(more)})" if more else "")


def _number_text(value: Any) -> Optional[str]:
    """A header's number as ``%g``; other values (a header made by a program, never checked by the
    reader) as text; None stays None."""
    if value is None:
        return None
    return format(value, "g") if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _clock_text(s: SessionSummary) -> str:
    """The note for a session whose frame times went back (empty when they never did)."""
    if not s.clock_steps_back:
        return ""
    return (f"frame times went back {s.clock_steps_back} time(s) (the clock set back?): each such frame is placed "
            "one frame gap after the one before")


def render_text(summaries: Sequence[SessionSummary]) -> str:
    """A plain-text summary (what ``idc-edge report`` prints without ``--html``). Text from the
    results file can hold anything: characters that are not printable (a terminal's control
    sequences) are shown as escapes (:func:`~idc_edge.fileio.printable`)."""
    lines = []
    for s in summaries:
        h = s.header or {}
        model = (h.get("model") or {})
        lines.append(f"session {s.number}: {_when(s.header)}, {s.frames} frame(s) over {s.duration_s:.1f} s"
                     + (f", source {h['source']['description']}" if h.get("source") else ""))
        if _clock_text(s):
            lines.append(f"  {_clock_text(s)}")
        if h:
            lines.append(f"  model {model.get('name')} (sha256 {str(model.get('sha256'))[:12]}…), threshold "
                         f"{h.get('threshold'):.3f}{_context_text(model)}, {_number_text(h.get('um_per_px'))} µm/px, "
                         f"idc-edge {h.get('idc_edge')}")
        judged = (f"largest {_fmt_area(s.max_idc_mm2)} in one frame, {s.mean_idc_percent:.1f} % of tissue on average"
                  if s.mean_idc_percent is not None else "no tissue judged in any frame")
        lines.append(f"  IDC: {judged}, {s.frames_with_idc} frame(s) with IDC"
                     + (f", {s.frames_without_call} frame(s) with tissue but no call ({_reasons_text(s.no_call_reasons)})"
                        if s.frames_without_call else Markup()))
        lines.append(f"  fields viewed: {_fields_text(s)}"
                     + (f"; snapshots: {len(s.snapshots)}" if s.snapshots else ""))
        for p in sorted(s.top, key=lambda p: (p.idc_mm2 or 0.0, p.idc_percent), reverse=True)[:3]:
            lines.append(f"  most IDC: frame {p.index} at {p.time_s:.1f} s, {_fmt_area(p.idc_mm2)} "
                         f"({p.idc_percent:.1f} % of tissue)")
    return "\n".join(printable(line) for line in lines)


_CSS = Markup("""
body { font: 15px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 980px; color: #222; padding: 0 12px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 18px; margin-top: 34px; border-bottom: 1px solid #ccc; }
.ruo { color: #8a5a00; font-weight: 600; } .dim { color: #666; font-size: 13px; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 3px 10px 3px 0; text-align: left;
vertical-align: top; border-bottom: 1px solid #eee; } th { font-weight: 600; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; } .card { width: 300px; font-size: 13px; }
.card img { width: 300px; border: 1px solid #ccc; display: block; }
.big { font-size: 24px; font-weight: 600; } code { font-size: 12px; word-break: break-all; }
""")


NO_PICTURE = "no snapshot or saved video of this frame"


def _picture_cards(pictures: Sequence[Picture]) -> Markup:
    cards = []
    for p in pictures:
        img = (markup('<img alt="frame {}" src="data:image/jpeg;base64,{}">', p.index, base64.b64encode(p.jpeg).decode())
               if p.jpeg else markup('<div class="dim">(no picture: {})</div>', p.no_picture or NO_PICTURE))
        cards.append(markup('<div class="card">{}frame {} at {:.1f} s: <b>{}</b> ({:.1f} % of tissue){}</div>', img,
                            p.index, p.time_s, _fmt_area(p.idc_mm2), p.idc_percent,
                            markup(' <span class="dim">from the {}</span>', p.from_) if p.from_ else Markup()))
    return markup('<div class="cards">{}</div>', _joined(cards))


def _summary_table(s: SessionSummary) -> Markup:
    no_call = (markup(", {} with tissue but no call ({})", s.frames_without_call, _reasons_text(s.no_call_reasons))
               if s.frames_without_call else Markup())
    return markup('<table><tr><td>largest IDC area in one frame</td><td class="big">{}</td></tr>'
                  '<tr><td>mean IDC share of tissue</td><td>{}</td></tr>'
                  "<tr><td>frames</td><td>{} over {:.1f} s, {} with IDC{}</td></tr>"
                  "<tr><td>fields viewed</td><td>{}</td></tr></table>",
                  _fmt_area(s.max_idc_mm2), _fmt_mean(s.mean_idc_percent), s.frames, s.duration_s, s.frames_with_idc,
                  no_call, _fields_text(s))


def _fields_table(fields: Sequence[FieldViewed], limit: int = 50) -> Markup:
    rows = _joined([markup("<tr><td>{:.1f} s</td><td>{:.1f} s</td><td>{}</td><td>{}</td><td>{:.1f} %</td></tr>",
                           f.start_s, f.duration_s, f.frames, _fmt_area(f.max_idc_mm2), f.max_idc_percent)
                    for f in fields[:limit]])
    more = markup('<div class="dim">{} more not listed</div>', len(fields) - limit) if len(fields) > limit else Markup()
    return markup("<h3>Fields viewed</h3><table><tr><th>from</th><th>for</th><th>frames</th><th>largest IDC area</th>"
                  "<th>largest IDC share</th></tr>{}</table>{}", rows, more)


def _settings_table(h: dict) -> Markup:
    model = h.get("model") or {}
    settings = _joined([markup("<tr><td>{}</td><td>{}</td></tr>", k, json.dumps(v))
                        for k, v in (h.get("options") or {}).items() if v is not None and k != "source"])
    return markup("<h3>Settings and model</h3><table>"
                  "<tr><td>model</td><td>{}<br><code>sha256 {}</code></td></tr>"
                  "<tr><td>threshold</td><td>{:.3f}{}</td></tr>"
                  "<tr><td>scale</td><td>{}</td></tr>"
                  "<tr><td>source</td><td>{}</td></tr><tr><td>idc-edge</td><td>{}</td></tr>{}</table>",
                  model.get("name"), model.get("sha256"), h.get("threshold"), _context_text(model), _scale_text(h),
                  (h.get("source") or {}).get("description"), h.get("idc_edge"), settings)


def render_html(summaries: Sequence[SessionSummary], source_name: str) -> str:
    """One self-contained HTML page (no external assets) for the sessions of a results file. Every
    value enters the page through :func:`markup`, escaped."""
    parts = [markup('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>idc-edge report: {}</title>'
                    '<style>{}</style></head><body><h1>idc-edge session report</h1><div class="dim">{} · {} session(s)'
                    '</div><p class="ruo">Research use only: IDC calls of a patch classifier, not a diagnosis.</p>',
                    source_name, _CSS, source_name, len(summaries))]
    for s in summaries:
        h = s.header or {}
        parts.append(markup("<h2>Session {}: {}</h2>{}", s.number, _when(s.header), _summary_table(s)))
        if s.clock_steps_back:
            parts.append(markup('<div class="dim">{}</div>', _clock_text(s)))
        has_area = any(v is not None for v in s.idc_mm2)
        series = ([("IDC area (mm²)", s.idc_mm2, "#c05000"), ("tissue area (mm²)", s.tissue_mm2, "#9a9a9a")]
                  if has_area else [("IDC % of tissue", s.idc_percent, "#c05000")])
        plot = svg_plot(s.times_s, series, "mm²" if has_area else "%", marks=[p.time_s for p in s.top],
                        bands=[(f.start_s, f.start_s + f.duration_s) for f in s.fields])
        parts.append(markup("<h3>IDC over time</h3>{}"
                            '<div class="dim">Shaded: fields where the stage rested; circles: the frames below.</div>'
                            "<h3>Frames with most IDC</h3>{}", plot,
                            _picture_cards(s.top) if s.top else markup("<p>No frame had IDC.</p>")))
        if s.snapshots:
            parts.append(markup("<h3>Snapshots taken</h3>{}", _picture_cards(s.snapshots)))
        if s.fields:
            parts.append(_fields_table(s.fields))
        if h:
            parts.append(_settings_table(h))
    parts.append(markup("</body></html>"))
    return _joined(parts)
