"""Estimators from the first labels on: class space, semi-supervised fits, sparse graph, co-training."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_moons

from ml.estimators import CoTraining, LabelSpreadingKNN, LogisticProbe, create_estimator, knn_graph

SHALLOW = ["logistic", "label_spreading", "co_training"]


def _fit(est, X, y, labelled):
    if getattr(est, "semi_supervised", False):
        return est.fit(X, np.where(labelled, y, -1))
    return est.fit(X[labelled], y[labelled])


@pytest.mark.parametrize("name", SHALLOW)
@pytest.mark.parametrize("n_labels", [1, 2])
def test_first_labels_give_full_class_space(name, n_labels, digits):
    X, y = digits
    labelled = np.zeros(len(y), dtype=bool)
    labelled[[0, 1][:n_labels]] = True  # digits 0 and 1
    est = _fit(create_estimator(name, n_classes=10), X, y, labelled)
    np.testing.assert_array_equal(est.classes_, np.arange(10))
    p = est.predict_proba(X)
    assert p.shape == (len(X), 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert np.all(p >= 0)
    assert set(est.predict(X)) <= set(y[labelled])
    assert est.predict(X[:1])[0] == 0  # a labelled sample keeps its label


@pytest.mark.parametrize("name", SHALLOW)
def test_learns_digits_from_few_labels(name, digits):
    X, y = digits
    labelled = np.zeros(len(y), dtype=bool)
    for c in range(10):
        labelled[np.flatnonzero(y == c)[:5]] = True
    if name == "co_training":  # two views that each see the whole digit, one of them noisy
        X = np.column_stack([X, X + np.random.default_rng(0).normal(scale=2.0, size=X.shape)])
    est = _fit(create_estimator(name, n_classes=10), X, y, labelled)
    assert np.mean(est.predict(X[~labelled]) == y[~labelled]) > 0.75


def test_labels_outside_class_space_are_rejected(digits):
    X, y = digits
    with pytest.raises(ValueError, match="class indices"):
        LogisticProbe(n_classes=3).fit(X[:20], y[:20])


def test_probe_temperature_is_fitted(digits):
    X, y = digits
    est = LogisticProbe(n_classes=10).fit(X[:200], y[:200])
    assert est.temperature_ > 0 and est.temperature_ != 1.0
    assert LogisticProbe(n_classes=10).fit(X[:3], y[:3]).temperature_ == 1.0  # too few to calibrate


def test_label_spreading_builds_a_sparse_graph():
    X, _ = make_moons(n_samples=3000, noise=0.05, random_state=0)
    S, _ = knn_graph(X.astype(np.float32), n_neighbors=10)
    assert sp.issparse(S) and S.shape == (3000, 3000)
    assert S.nnz <= 2 * 10 * 3000  # O(N k), never dense
    np.testing.assert_allclose((S - S.T).toarray(), 0, atol=1e-6)  # symmetric normalisation


def test_label_spreading_follows_the_manifold():
    # Two moons with one label each: a linear probe cannot get this right, spreading along the kNN graph can.
    X, y = make_moons(n_samples=1000, noise=0.04, random_state=0)
    X = np.column_stack([X, np.ones(len(X))])  # the graph is cosine: lift the moons off the origin
    y_obs = np.full(len(y), -1)
    first = [np.flatnonzero(y == c)[0] for c in (0, 1)]
    y_obs[first] = y[first]
    est = LabelSpreadingKNN(n_neighbors=10, n_classes=2).fit(X, y_obs)
    assert sp.issparse(est.graph_)
    assert np.mean(est.transduction_ == y) > 0.95
    np.testing.assert_allclose(est.predict_proba(X), est.label_distributions_)
    # a worker writes predictions in shuffled chunks: pool rows are looked up, never re-estimated
    perm = np.random.default_rng(0).permutation(len(X))
    chunks = np.concatenate([est.predict_proba(X[perm[i : i + 97]]) for i in range(0, len(X), 97)])
    np.testing.assert_allclose(chunks, est.label_distributions_[perm])
    # new points are judged by their nearest training rows
    assert np.mean(est.predict(X + 1e-3) == y) > 0.95


def test_co_training_hands_pseudo_labels_across_views(digits):
    X, y = digits
    rng = np.random.default_rng(0)
    X2 = np.column_stack([X, X[:, ::-1] + rng.normal(scale=1.0, size=X.shape)])  # two noisy views
    y_obs = np.full(len(y), -1)
    for c in range(10):
        y_obs[np.flatnonzero(y == c)[:3]] = c
    est = CoTraining(view_split=64, n_classes=10, min_confidence=0.5, max_rounds=3).fit(X2, y_obs)
    assert est.n_rounds_ >= 1 and min(est.pseudo_labelled_) > 0
    assert len(est.agreement_history_) >= 1
    assert np.mean(est.predict(X2) == y) > 0.7


def test_co_training_stops_when_confidence_falls(digits):
    X, y = digits
    y_obs = np.full(len(y), -1)
    y_obs[:20] = y[:20]
    est = CoTraining(n_classes=10, min_confidence=0.999999, max_rounds=5).fit(X, y_obs)
    assert est.n_rounds_ == 0 and est.pseudo_labelled_ == [0, 0]


def _digit_images(X):
    """8x8 digits (0..16) as 16x16 pixels in [0, 255], flattened NHWC: what FineTuneClassifier takes."""
    return (np.kron(X.reshape(-1, 8, 8), np.ones((2, 2))) * 16).clip(0, 255).reshape(len(X), -1)


@pytest.mark.parametrize("n_labels", [1, 2, 20])
def test_finetune_runs_on_cpu_from_the_first_labels(n_labels, digits):
    # Not in check_estimator: its inputs are images of a fixed size, not arbitrary feature matrices.
    from sklearn.base import clone

    X, y = digits
    img = _digit_images(X[:60])
    est = create_estimator("finetune", image_size=16, n_classes=10, epochs=1, min_steps=3, batch_size=16,
                           device="cpu")
    assert clone(est).get_params() == est.get_params()
    assert est.fit(img[:n_labels], y[:n_labels]) is est
    p = est.predict_proba(img)
    assert p.shape == (60, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert set(est.predict(img)) <= set(y[:n_labels])  # unseen classes are masked until labelled
    with pytest.raises(ValueError, match="features"):
        est.predict_proba(img[:, :10])
