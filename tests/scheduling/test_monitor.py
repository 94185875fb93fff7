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


def test_a_comparison_uses_the_labelled_samples_both_embeddings_cover():
    from ml.monitor import compare

    rng = np.random.default_rng(1)
    ids = np.arange(10, 70)
    labels = ["a" if i % 2 else "b" for i in range(60)]
    labels[:10] = [None] * 10  # unlabelled: never part of the figure
    y = np.array([lab == "a" for lab in labels])
    good = rng.normal(size=(60, 4)) * 0.1 + np.where(y, 1.0, -1.0)[:, None]
    cur_ids = ids[:-5]  # the last five were imported after the embedding in use
    cur = rng.normal(size=(55, 6))
    c = compare(good, ids, labels, cur_ids, cur)
    assert (c.kind, c.labels, c.new) == ("probe", 45, 1.0)
    assert c.current is not None and c.current < 0.8
    # The rows of the embedding in use are found by id: the same embedding in another order scores alike.
    order = np.random.default_rng(2).permutation(60)
    same = compare(good[order], ids[order], [labels[i] for i in order], ids, good)
    assert same.new == same.current == 1.0 and same.labels == 50


def test_too_few_labels_are_no_comparison():
    from ml.monitor import compare

    ids = np.arange(4)
    c = compare(np.eye(4), ids, ["a", None, "b", "b"], ids, np.eye(4))
    assert c.kind is None and c.labels == 3 and c.new is None
