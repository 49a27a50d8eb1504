"""The flags of ``idc-edge run`` bound to option fields (idc_edge/cli/bindings.py): one table makes
the parser, the options the run gets and the command line's words for the library's names."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from idc_edge.cli import build_parser
from idc_edge.cli.bindings import bound_values
from idc_edge.cli.options import FLAGS, in_cli_words
from idc_edge.cli.run import RUN_FLAGS, build_config
from idc_edge.detector import DetectorOptions
from idc_edge.errors import OptionError, UsageError
from idc_edge.session import RunConfig

PARTS = {"detector": DetectorOptions, "run": RunConfig}


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), np.full((60, 80, 3), 200, np.uint8))
    return str(path)


def test_every_bound_flag_names_a_field_of_its_options_and_none_is_bound_twice():
    for b in RUN_FLAGS:
        assert b.name in {f.name for f in dataclasses.fields(PARTS[b.part])}, b
    assert len({b.field for b in RUN_FLAGS}) == len(RUN_FLAGS) and len({b.flag for b in RUN_FLAGS}) == len(RUN_FLAGS)


def test_flags_not_given_leave_the_dataclass_defaults(image):
    config = build_config(build_parser().parse_args(["run", "--source", image]))
    assert config == RunConfig(source=image, camera_mode=config.camera_mode, camera_controls=config.camera_controls)
    assert config.detector == DetectorOptions()


def test_every_bound_flag_reaches_its_field(image):
    args = build_parser().parse_args(["run", "--source", image, "--threshold", "0.25", "--threads", "2",
                                      "--um-per-px", "2", "--stride", "10", "--no-dense", "--no-mask", "--no-reuse",
                                      "--sequential", "--max-frames", "3"])
    config = build_config(args)
    assert config.detector == DetectorOptions(threshold=0.25, num_threads=2, um_per_px=2.0, stride=10, dense=False,
                                              tissue_mask=False, reuse=False)
    assert (config.sequential, config.max_frames) == (True, 3)
    patients = build_parser().parse_args(["run", "--source", image, "--patient", "8867", "--patient", "10253 "])
    assert bound_values(patients, RUN_FLAGS, "run") == {"patients": ("8867", "10253")}


def test_argparse_only_converts_and_the_dataclass_refuses_in_the_flags_words(image):
    with pytest.raises(UsageError, match="--stride must be a whole number"):
        build_parser().parse_args(["run", "--source", image, "--stride", "x"])
    with pytest.raises(OptionError) as e:  # a number, but out of range: the dataclass says so
        build_config(build_parser().parse_args(["run", "--source", image, "--max-frames", "0"]))
    assert str(e.value).startswith("max_frames must be >= 1") and in_cli_words(e.value).startswith("--max-frames must be >= 1")


def test_the_table_teaches_the_error_words_its_library_names():
    build_parser()
    assert (FLAGS["num_threads"], FLAGS["model_path"], FLAGS["camera_timeout_s"]) == ("--threads", "--model",
                                                                                      "--camera-timeout")
    assert (FLAGS["dense=False"], FLAGS["tissue_mask=False"], FLAGS["reuse=False"]) == ("--no-dense", "--no-mask",
                                                                                        "--no-reuse")
    assert in_cli_words(OptionError("or patch by patch (dense=False)", options=["dense=False"])) == \
        "or patch by patch (--no-dense)"
