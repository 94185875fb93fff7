"""Likely label errors on arrays (issue 18): planted flips are found, a clean set yields few, the
per-class thresholds, the confident joint and its calibrated count of wrong labels per class follow
confident learning's rule (prune by class)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.label_issues import (
    confident_classes,
    find_label_issues,
    nearest_labelled,
    out_of_fold_proba,
    rank_issues,
    thresholds,
    update_out_of_fold,
)


def _blobs(n_per: int = 60, n_classes: int = 4, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (n_classes, dim))
    y = np.repeat(np.arange(n_classes), n_per)
    return (centres[y] + rng.normal(0, 1, (len(y), dim))).astype(np.float32), y


def test_planted_flips_come_first_with_the_true_class_as_the_alternative():
    X, y = _blobs()
    rng = np.random.default_rng(1)
    flipped = rng.choice(len(y), 12, replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + 1 + rng.integers(0, 3, 12)) % 4
    found = find_label_issues(X, noisy, 4)
    top = found.rows[:12]
    assert np.isin(top, flipped).sum() >= 11
    assert (found.suggested[:12][np.isin(top, flipped)] == y[top[np.isin(top, flipped)]]).all()
    assert np.all(np.diff(found.score) <= 1e-12)  # most likely wrong first


def test_a_clean_set_yields_few():
    X, y = _blobs(seed=3)
    found = find_label_issues(X, y, 4)
    assert len(found.rows) <= 3


def test_thresholds_are_each_class_mean_self_confidence():
    proba = np.array([[0.9, 0.1], [0.7, 0.3], [0.4, 0.6], [0.2, 0.8]])
    y = np.array([0, 0, 1, 1])
    assert np.allclose(thresholds(proba, y), [0.8, 0.7])
    # A class nobody labelled is never a confident alternative.
    assert np.isinf(thresholds(proba[:, :2], np.array([0, 0, 0, 0]))[1])


def test_confident_joint_uses_per_class_thresholds_not_the_argmax():
    # Row 0 (labelled 0) has p1 = 0.45 < p0 but class 1's bar is low (a hard class): per-class thresholds
    # count it as confidently 1 only if p0 is below its own bar. Here p0 = 0.55 < t0 = 0.75 and
    # p1 = 0.45 >= t1 = 0.4: an issue the argmax would never raise.
    proba = np.array([[0.55, 0.45], [0.95, 0.05], [0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 0, 1, 1])
    t = thresholds(proba, y)
    assert np.allclose(t, [0.75, 0.4])
    assert confident_classes(proba, t).tolist() == [1, 0, 1, 1]
    rows, suggested, _, _, joint = rank_issues(proba, y)
    assert rows.tolist() == [0] and suggested.tolist() == [1]
    assert joint.tolist() == [[1, 1], [0, 2]]


def test_each_class_doubts_its_calibrated_count_of_wrong_labels_even_without_a_confident_alternative():
    """Class 0: 5 sure, 3 unsure (right), a flip the model puts confidently in class 1 and a flip it is
    unsure of. The joint counts 1 wrong of the 6 it counted; calibrated to the class's 10 labels, 1.67,
    so 2 wrong: the two lowest p[0], both flips. Only the off-diagonal sample was listed before."""
    sure, unsure, flip_sure, flip_unsure = [0.95, 0.05], [0.6, 0.4], [0.1, 0.9], [0.3, 0.7]
    proba = np.array([sure] * 5 + [unsure] * 3 + [flip_sure, flip_unsure] + [[0.2, 0.8]] * 10)
    y = np.array([0] * 10 + [1] * 10)
    t = thresholds(proba, y)
    assert confident_classes(proba, t)[8:10].tolist() == [1, -1]  # the second flip clears no bar
    rows, suggested, score, _, joint = rank_issues(proba, y)
    assert joint.tolist() == [[5, 1], [0, 10]]
    assert rows.tolist() == [8, 9] and suggested.tolist() == [1, 1]
    assert score.tolist() == pytest.approx([0.9, 0.7])


def test_out_of_fold_probabilities_never_see_their_own_label():
    # Pure noise features: a model that had seen a row would fit its label; out of fold it cannot.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 200)).astype(np.float32)
    y = rng.integers(0, 2, 120)
    proba = out_of_fold_proba(X, y, 2)
    assert proba.shape == (120, 2) and np.allclose(proba.sum(1), 1)
    assert (proba.argmax(1) == y).mean() < 0.7


def test_neighbours_are_the_most_cosine_similar_others():
    X = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0], [0.8, 0.2]], dtype=np.float32)
    idx, sim = nearest_labelled(X, np.array([0, 2]), k=2)
    assert idx[0].tolist() == [1, 4]
    assert idx[1].tolist() == [4, 1]
    assert sim[0, 0] > sim[0, 1] and 0 not in idx[0]
    assert nearest_labelled(X[:1], np.array([0]), k=2)[0].tolist() == [[-1, -1]]


def test_one_class_has_nothing_to_doubt():
    X, y = _blobs(n_classes=2)
    found = find_label_issues(X[y == 0], y[y == 0], 3)
    assert len(found.rows) == 0


def test_one_label_a_class_says_nothing_rather_than_failing():
    """Two classes with one label each (a new project's first train): no label can be held out, so the
    list is empty; StratifiedKFold's refusal failed the whole train job before."""
    X = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    issues = find_label_issues(X, np.array([0, 1]), 3)
    assert len(issues.rows) == 0
    issues = find_label_issues(np.vstack([X, X]), np.array([0, 1, 2, 2]), 3)  # one class has two
    assert issues.rows.ndim == 1


def test_new_labels_are_scored_by_one_fit_on_the_known_ones_and_the_folds_come_back_past_a_quarter():
    # Pure noise with a planted flip among the new rows: a model that saw a new row would fit its label.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 100)).astype(np.float32)
    y = rng.integers(0, 2, 200)
    known = np.arange(200) < 170
    old = np.full((200, 2), 0.5)
    old[known] = rng.dirichlet([1, 1], int(known.sum()))
    proba, since = update_out_of_fold(X, y, 2, known, old, since_full=0)
    assert since == 30 and np.array_equal(proba[known], old[known])  # kept as they were
    assert np.allclose(proba[~known].sum(1), 1) and not np.allclose(proba[~known], 0.5)
    assert (proba[~known].argmax(1) == y[~known]).mean() < 0.8  # out of sample: noise is not learnt
    # 30 more since the last full pass, and 30 now: 60 of 200 passes a quarter, so the ten folds again.
    proba, since = update_out_of_fold(X, y, 2, known, old, since_full=30)
    assert since == 0 and not np.array_equal(proba[known], old[known])
    # A class the known rows never saw: the folds, not a model that would doubt every label of it.
    y3 = y.copy()
    y3[~known] = 2
    _, since = update_out_of_fold(X, y3, 3, known, np.hstack([old, np.zeros((200, 1))]), since_full=0)
    assert since == 0
