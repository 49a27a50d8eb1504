"""``idc-edge classify`` judges a patch image as ``run`` judges a frame: the detector's tissue mask,
its no-colour check and its quarter-of-a-patch size rule (real files, the command as a subprocess)."""
import csv
import io
import subprocess
import sys

import cv2
import numpy as np

from idc_edge.dataset import patch_rgb
from idc_edge.detector import Detector


def idc_edge(*args):
    return subprocess.run([sys.executable, "-m", "idc_edge", *map(str, args)], capture_output=True, text=True,
                          timeout=180)


def rows(p) -> dict:
    assert p.returncode == 0, p.stderr
    return {r["path"]: r for r in csv.DictReader(io.StringIO(p.stdout))}


def _odd_inputs(data_dir, tmp_path):
    idc = cv2.imread(str(sorted((data_dir / "8867" / "1").glob("*.png"))[0]))
    made = {"pixel": np.full((1, 1, 3), 255, np.uint8), "glass": np.full((50, 50, 3), 255, np.uint8),
            "grey": cv2.cvtColor(idc, cv2.COLOR_BGR2GRAY)}
    for key, image in made.items():
        assert cv2.imwrite(str(tmp_path / f"{key}.png"), image)
    return {key: str(tmp_path / f"{key}.png") for key in made}


def test_glass_a_pixel_and_a_grey_patch_are_not_scored_and_are_warned_about_as_run_does(data_dir, tmp_path):
    paths = _odd_inputs(data_dir, tmp_path)
    p = idc_edge("classify", *paths.values(), "--quiet")
    for key, path in paths.items():  # each was tissue 1 with a probability; the grey copy was called IDC
        row = rows(p)[path]
        assert (row["tissue"], row["probability"], row["idc"]) == ("0", "", ""), key
    assert "1 image(s) have no colour" in p.stderr and "so nothing in them is called" in p.stderr
    assert "1 image(s) are too small" in p.stderr and "1×1 px, less than a quarter of one 50 px patch" in p.stderr
    # run says the same of the same images: one rule, one wording
    grey = idc_edge("run", "--source", paths["grey"], "--quiet")
    pixel = idc_edge("run", "--source", paths["pixel"], "--quiet")
    assert "have no colour (a monochrome camera" in grey.stderr
    assert "less than a quarter of one 50 px patch: its result means little" in pixel.stderr


def test_no_mask_scores_them_anyway_and_says_the_grey_scores_mean_nothing(data_dir, tmp_path):
    paths = _odd_inputs(data_dir, tmp_path)
    p = idc_edge("classify", *paths.values(), "--quiet", "--no-mask")
    assert all(rows(p)[path]["tissue"] == "1" and rows(p)[path]["probability"] for path in paths.values())
    assert "with the tissue mask off every window is scored anyway" in p.stderr


def test_real_patches_of_both_classes_keep_their_scores(data_dir):
    files = [f for label in "01" for f in sorted((data_dir / "8867" / label).glob("*.png"))[:4]]
    p = idc_edge("classify", *files, "--quiet")
    with Detector() as det:
        expected = det.classify_patches(np.stack([patch_rgb(cv2.imread(str(f)), det.patch) for f in files]))
        threshold = det.spec.threshold
    got = rows(p)
    assert p.stderr == ""
    for f, prob in zip(files, expected):
        row = got[str(f)]
        assert (row["tissue"], row["probability"], row["idc"]) == ("1", f"{prob:.6f}", str(int(prob >= threshold)))
    assert {got[str(f)]["label"] for f in files} == {"0", "1"}
