"""A frame's index and time are refused where they enter (``Detector.detect``, and so every frame of
a custom source) unless the results file's own reader accepts them: the writer and the reader agree.
The real detector, a real session and a real results file."""
import numpy as np
import pytest

from conftest import frame_with_blob
from idc_edge.detector import Detector, DetectorOptions
from idc_edge.errors import FrameError
from idc_edge.record import MAX_INDEX, MAX_TIME_S
from idc_edge.report import summarize
from idc_edge.session import RunConfig, Session
from idc_edge.sinks.jsonl import JsonlSink
from idc_edge.sources.base import Frame, FrameSource


@pytest.fixture(scope="module")
def detector(tiny_int8):
    with Detector(model_path=str(tiny_int8)) as det:
        yield det


FRAME = frame_with_blob(box=(100, 100, 400, 300))


@pytest.mark.parametrize("index", [-1, 2 ** 70, MAX_INDEX + 1, 1.5, 2.0, True, np.bool_(True), "a", None, "3"])
def test_an_index_the_results_file_cannot_hold_is_a_frame_error_naming_it(detector, index):
    # -1 and 2**70 were written and then refused by report; 1.5 was cut to 1, True became 1,
    # 'a' was a bare ValueError and None a TypeError
    with pytest.raises(FrameError, match=r"frame index .* is not a frame number: it must be a whole number from 0 to "
                                         f"{MAX_INDEX}"):
        detector.detect(FRAME, index=index)
    for fine in (0, np.int64(9), np.uint8(3), MAX_INDEX):  # whole numbers in range: plain ints
        r = detector.detect(FRAME, index=fine, timestamp=1.0)
        assert r.index == int(fine) and type(r.index) is int


@pytest.mark.parametrize("timestamp", [1.7e18, -1.7e18, 1e300, MAX_TIME_S * 1.01])
def test_a_time_beyond_the_results_files_range_is_a_frame_error_saying_to_divide_nanoseconds(detector, timestamp):
    with pytest.raises(FrameError, match=r"frame 4 has timestamp .*: a frame's time must be seconds from -1e\+12 to "
                                         r"1e\+12; divide a sensor's nanosecond stamps by 1e9"):
        detector.detect(FRAME, index=4, timestamp=timestamp)
    for fine in (0, -1.5, MAX_TIME_S, -MAX_TIME_S, np.float32(2.5), 1_700_000_000.25):  # seconds: plain floats
        r = detector.detect(FRAME, index=0, timestamp=fine)
        assert r.timestamp == float(fine) and type(r.timestamp) is float


class _Custom(FrameSource):
    """A user's own source (the documented extension point) with the given indices and times."""

    def __init__(self, stamps):
        super().__init__("custom camera")
        self.stamps = stamps

    def _iter_frames(self):
        for index, t in self.stamps:
            yield Frame(index, t, FRAME)


@pytest.mark.parametrize("stamps,message", [
    ([(0, 1.7e18), (1, 1.7e18 + 4e7)], "divide a sensor's nanosecond stamps by 1e9"),  # time.monotonic_ns()
    ([(-1, 1.0), (0, 1.1)], "frame index -1 is not a frame number"),
])
def test_a_custom_source_never_writes_a_results_file_its_own_report_refuses(tmp_path, tiny_int8, stamps, message):
    # the run wrote "3 result(s) in rt.jsonl", then report refused that file as a whole
    path = tmp_path / "r.jsonl"
    config = RunConfig(source="custom", max_frames=2, detector=DetectorOptions(model_path=str(tiny_int8)))
    with pytest.raises(FrameError, match=message):
        Session(config, [JsonlSink(path)], source=_Custom(stamps)).run()
    ok = tmp_path / "ok.jsonl"
    Session(config, [JsonlSink(ok)], source=_Custom([(0, 1.7e9), (1, 1.7e9 + 0.04)])).run()
    assert summarize(ok, pictures=False)[0].frames == 2  # seconds, as the message says: read back whole
