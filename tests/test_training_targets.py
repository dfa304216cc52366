"""Training targets and the calibration budgets of issue 18 (no model training here)."""

import numpy as np

from training.rows import in_scope_teacher
from training.thresholds import tune_thresholds


def test_teacher_out_of_scope_mass_is_removed_from_in_scope_rows_only() -> None:
    oos = 2
    probs = np.array([[0.2, 0.2, 0.6],   # in-scope gold 0, teacher mostly out of scope
                      [0.1, 0.1, 0.8],   # out-of-scope gold: unchanged
                      [0.0, 0.0, 1.0]],  # in-scope gold but all mass out of scope: unchanged
                     dtype=np.float32)
    gold = np.array([0, 2, 1])
    out = in_scope_teacher(probs, gold, oos)
    np.testing.assert_allclose(out[0], [0.5, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(out[1], probs[1])
    np.testing.assert_allclose(out[2], probs[2])
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-6)
    assert probs[0, oos] == np.float32(0.6)  # the input is not modified


def test_a_budget_group_limits_the_threshold_on_its_own() -> None:
    # 100 large-group rows all confident; a 10-row group with low confidences.
    val_conf = np.concatenate([np.full(100, 0.95), np.linspace(0.3, 0.6, 10)])
    correct = np.ones(110, bool)
    oos_conf = np.linspace(0.1, 0.7, 50)
    big = np.arange(110) < 100
    small = ~big
    without = tune_thresholds(val_conf, correct, oos_conf, max_in_scope_rejection=0.1, budget_rows=big)
    with_group = tune_thresholds(val_conf, correct, oos_conf, max_in_scope_rejection=0.1, budget_rows=big,
                                 budget_groups=[small])
    assert without["oos_threshold"] > 0.6  # the small group alone is not protected: all declined
    assert (val_conf[small] < with_group["oos_threshold"]).sum() == 1  # 1 of its 10 rows: the 10 % budget
    assert with_group["budget_groups_kept"][0] >= 0.9
    assert with_group["oos_rejection"] < without["oos_rejection"]
