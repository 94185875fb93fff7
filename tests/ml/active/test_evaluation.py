"""Audit accuracy and labels-to-target maths."""

import numpy as np
import pytest

from ml.evaluation import audit_accuracy, choose_audit_sample, fit_learning_curve, labels_needed, labels_to_target


def test_wilson_interval_matches_the_formula():
    est, lo, hi = audit_accuracy(np.ones(10), np.r_[np.ones(8), np.zeros(2)])
    assert est == pytest.approx(0.8)
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=1e-3)
    est, lo, hi = audit_accuracy(np.ones(20), np.ones(20))
    assert est == 1.0 and hi == 1.0 and lo == pytest.approx(0.8389, abs=1e-3)  # never a zero-width interval


def test_audit_interval_shrinks_with_more_samples():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    pred = np.where(rng.random(2000) < 0.9, y, (y + 1) % 3)
    w_small = np.subtract(*audit_accuracy(y[:50], pred[:50])[2:0:-1])
    w_big = np.subtract(*audit_accuracy(y, pred)[2:0:-1])
    assert 0 < w_big < w_small


def test_audit_sample_is_random_disjoint_and_seeded():
    active = np.zeros(1000, dtype=bool)
    active[:300] = True
    a = choose_audit_sample(1000, 50, seed=1, exclude_mask=active)
    assert len(a) == 50 == len(set(a)) and not active[a].any()
    np.testing.assert_array_equal(a, choose_audit_sample(1000, 50, seed=1, exclude_mask=active))
    assert set(a) != set(choose_audit_sample(1000, 50, seed=2, exclude_mask=active))


def test_labels_to_target_inverts_a_power_law():
    a, b, c = 0.95, 1.2, 0.6
    curve = [(n, a - b * n**-c) for n in (10, 20, 50, 100, 200)]
    fit = fit_learning_curve(curve)
    assert fit == pytest.approx((a, b, c), rel=1e-3)
    target = 0.92
    expected = (b / (a - target)) ** (1 / c) - 200
    assert labels_to_target(curve, target) == pytest.approx(expected, rel=0.01)
    assert labels_to_target(curve, 0.5) == 0  # already there
    assert labels_to_target(curve, 0.97) is None  # above the curve's ceiling
    assert labels_to_target(curve[:2], 0.9) is None  # two points cannot fix three parameters


def test_labels_needed_interpolates():
    curve = [(10, 0.5), (20, 0.7), (50, 0.9)]
    assert labels_needed(curve, 0.8) == pytest.approx(35.0)
    assert labels_needed(curve, 0.4) == 10
    assert labels_needed(curve, 0.95) is None
