"""The figure that decides a switch of backbone: which one the labels support, and that it tells a
representation that separates the labels from one that does not."""

from __future__ import annotations

import numpy as np

from ml.monitor import figure_kind, score


def test_the_labels_decide_the_figure():
    assert figure_kind(np.array(["a", "a", "a"])) is None  # one class
    assert figure_kind(np.array(["a", "a", "b"])) is None  # a class with one label cannot be left out
    assert figure_kind(np.array(["a", "a", "b", "b"])) == "knn"
    assert figure_kind(np.array(["a"] * 5 + ["b"] * 4)) == "knn"
    assert figure_kind(np.array(["a"] * 5 + ["b"] * 5)) == "probe"


def test_a_separating_embedding_scores_above_a_random_one():
    rng = np.random.default_rng(0)
    y = np.array(["a", "b"] * 20)
    good = rng.normal(size=(40, 8)) * 0.1 + np.where(y == "a", 1.0, -1.0)[:, None]
    noise = rng.normal(size=(40, 8))
    for kind in ("knn", "probe"):
        assert score(good, y, kind).accuracy == 1.0
        assert score(noise, y, kind).accuracy < 0.8
        assert score(good, y, kind).labels == 40
