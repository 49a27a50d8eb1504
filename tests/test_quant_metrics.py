import math

import numpy as np
import pytest

from idc_edge.metrics import best_threshold, binary_metrics, confusion, per_group_metrics, roc_auc, roc_curve
from idc_edge.quant import dequantize, quantize


def test_quantize_rounds_saturates_and_dequantize_inverts():
    x = np.array([-1.0, 0.0, 0.1, 0.5, 2.0], np.float32)
    q = quantize(x, 1 / 128, 0, np.int8)
    assert q.tolist() == [-128, 0, 13, 64, 127]
    np.testing.assert_allclose(dequantize(q, 1 / 128, 0), [-1.0, 0.0, 13 / 128, 0.5, 127 / 128])
    assert quantize(np.array([0.0, 255.0]), 1.0, -128, np.int8).tolist() == [-128, 127]
    assert quantize(np.array([0.99609375]), 1 / 256, 0, np.uint8).tolist() == [255]


def test_quantize_fails_with_bad_dtype_or_scale():
    with pytest.raises(ValueError, match="int8 or uint8"):
        quantize(np.zeros(1), 1.0, 0, np.int16)
    with pytest.raises(ValueError, match="scale"):
        quantize(np.zeros(1), 0.0, 0, np.int8)


def test_binary_metrics_match_hand_computed_values():
    y = [0, 0, 0, 0, 1, 1, 1]
    s = [0.1, 0.2, 0.6, 0.3, 0.7, 0.4, 0.9]
    m = binary_metrics(y, s, 0.5)
    # tn=3 fp=1 fn=1 tp=2
    assert m.confusion == ((3, 1), (1, 2))
    assert m.accuracy == pytest.approx(5 / 7)
    assert m.recall_0 == pytest.approx(3 / 4) and m.recall_1 == pytest.approx(2 / 3)
    assert m.balanced_accuracy == pytest.approx((3 / 4 + 2 / 3) / 2)
    assert m.precision_1 == pytest.approx(2 / 3)
    assert m.f1_1 == pytest.approx(2 / 3)
    # (positive, negative) pairs ranked correctly: 0.7 beats 4, 0.4 beats 3, 0.9 beats 4 → 11/12
    assert m.roc_auc == pytest.approx(11 / 12)


def test_roc_auc_counts_ties_as_half_and_is_nan_for_one_class():
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_balanced_accuracy_is_nan_like_roc_auc_when_a_class_has_no_patch():
    only_no_idc = binary_metrics([0, 0, 0], [0.1, 0.2, 0.7], 0.5)
    assert only_no_idc.recall_0 == pytest.approx(2 / 3) and math.isnan(only_no_idc.recall_1)
    assert math.isnan(only_no_idc.balanced_accuracy) and math.isnan(only_no_idc.roc_auc)  # not recall_0 alone
    assert only_no_idc.absent_class() == 1 and binary_metrics([1, 1], [0.2, 0.9]).absent_class() == 0
    assert binary_metrics([0, 1], [0.2, 0.9]).absent_class() is None


def test_roc_curve_starts_at_origin_and_ends_at_one():
    fpr, tpr, thr = roc_curve([0, 1, 0, 1], [0.1, 0.8, 0.4, 0.3])
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(thr[1:]) < 0)


def test_best_threshold_separates_separable_scores():
    t = best_threshold([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9])
    assert 0.3 < t <= 0.6
    assert binary_metrics([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.9], t).balanced_accuracy == 1.0
    with pytest.raises(ValueError, match="both classes"):
        best_threshold([1, 1], [0.2, 0.3])


def test_per_group_metrics_split_by_patient():
    out = per_group_metrics(["a", "a", "b", "b"], [0, 1, 0, 1], [0.2, 0.8, 0.9, 0.1], 0.5)
    assert out["a"].accuracy == 1.0 and out["b"].accuracy == 0.0


def test_confusion_rejects_mismatched_lengths_and_bad_labels():
    with pytest.raises(ValueError, match="differ"):
        confusion([0, 1], [1])
    with pytest.raises(ValueError, match="labels"):
        binary_metrics([0, 2], [0.1, 0.2])
