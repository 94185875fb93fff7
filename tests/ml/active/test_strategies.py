"""Every registered strategy on a tiny real pool: valid, unique, unlabelled, deterministic picks."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from ml.strategies import create_strategy, list_strategies
from ml.strategies.base import l2_normalise

EXPECTED = {"random", "least_confidence", "margin", "entropy", "kcenter", "cold_start", "mixed", "typical_first"}


def test_registry():
    assert EXPECTED <= set(list_strategies())
    with pytest.raises(KeyError, match="unknown strategy"):
        create_strategy("no-such-strategy")


def _check_selection(sel, labelled, exclude, k):
    idx = sel.indices
    assert idx.dtype.kind == "i" and len(idx) == k
    assert len(np.unique(idx)) == k
    assert not labelled[idx].any() and not exclude[idx].any()
    assert len(sel.scores) == len(sel.probabilities) == len(sel.reasons) == k
    assert np.all((sel.probabilities > 0) & (sel.probabilities <= 1))
    assert all(isinstance(r, str) and r for r in sel.reasons)


@pytest.mark.parametrize("name", list_strategies())
@pytest.mark.parametrize("with_model", [False, True], ids=["zero-labels", "with-model"])
def test_strategy_picks_valid_batch(name, with_model, digits, digits_state):
    X, _ = digits
    labelled, proba = digits_state if with_model else (np.zeros(len(X), dtype=bool), None)
    exclude = np.zeros(len(X), dtype=bool)
    exclude[::7] = True  # e.g. leased to another annotator or in the audit sample
    sel = create_strategy(name, seed=3).select(X, proba, labelled, 12, exclude_mask=exclude)
    _check_selection(sel, labelled, exclude, 12)
    again = create_strategy(name, seed=3).select(X, proba, labelled, 12, exclude_mask=exclude)
    np.testing.assert_array_equal(sel.indices, again.indices)
    scores = create_strategy(name, seed=3).score_all(X, proba, labelled, exclude)
    assert scores.shape == (len(X),) and np.all(np.isfinite(scores))


@pytest.mark.parametrize("name", ["random", "kcenter", "cold_start"])
def test_seed_changes_stochastic_picks(name, digits):
    X, _ = digits
    lab = np.zeros(len(X), dtype=bool)
    a = create_strategy(name, seed=0).select(X, None, lab, 10).indices
    b = create_strategy(name, seed=1).select(X, None, lab, 10).indices
    assert set(a) != set(b)


def test_batch_larger_than_pool_returns_every_candidate(digits, digits_state):
    X, _ = digits
    labelled = np.ones(len(X), dtype=bool)
    labelled[:5] = False
    for name in list_strategies():
        sel = create_strategy(name).select(X, digits_state[1], labelled, 50)
        assert sorted(sel.indices.tolist()) == [0, 1, 2, 3, 4], name


def test_random_probability_is_k_over_n(digits):
    X, _ = digits
    sel = create_strategy("random").select(X, None, np.zeros(len(X), dtype=bool), 10)
    np.testing.assert_allclose(sel.probabilities, 10 / len(X))


def test_uncertainty_picks_the_most_uncertain():
    proba = np.array([[0.98, 0.01, 0.01], [0.4, 0.35, 0.25], [0.7, 0.2, 0.1], [0.34, 0.33, 0.33]])
    X = np.eye(4, dtype=np.float32)
    lab = np.zeros(4, dtype=bool)
    for name in ["least_confidence", "margin", "entropy"]:
        assert create_strategy(name).select(X, proba, lab, 2).indices.tolist() == [3, 1], name


@pytest.mark.parametrize("name", ["cold_start", "mixed"])
def test_cold_start_from_zero_covers_clusters(name):
    X, blob = make_blobs(n_samples=600, centers=8, n_features=16, cluster_std=0.5, random_state=0)
    sel = create_strategy(name, seed=0).select(X, None, np.zeros(len(X), dtype=bool), 8)
    assert len(set(blob[sel.indices])) == 8  # one pick per cluster first
    assert sel.strategy == "cold_start"  # what chose them, whatever the strategy's name
    assert all(r.startswith("group;") and "labelled=0" in r for r in sel.reasons)  # groups nobody labelled


def test_cold_start_on_digits_reaches_most_classes(digits):
    X, y = digits
    sel = create_strategy("cold_start", seed=0).select(X, None, np.zeros(len(X), dtype=bool), 10)
    assert len(set(y[sel.indices])) >= 8
    # and the next batch goes to clusters nobody has labelled yet
    lab = np.zeros(len(X), dtype=bool)
    lab[sel.indices] = True
    nxt = create_strategy("cold_start", seed=0).select(X, None, lab, 10)
    assert any("labelled=0" in r for r in nxt.reasons)


def test_kcenter_covers_far_points():
    X = np.concatenate([np.random.default_rng(0).normal(size=(200, 4)) * 0.01 + [1, 0, 0, 0],
                        [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]]).astype(np.float32)
    lab = np.zeros(len(X), dtype=bool)
    lab[0] = True
    sel = create_strategy("kcenter").select(X, None, lab, 3)
    assert sorted(sel.indices.tolist()) == [200, 201, 202]


def test_mixed_batch_has_no_near_duplicates(digits, digits_state):
    X, _ = digits
    labelled, proba = digits_state
    # Every sample three times (plus a whisper of noise): pure uncertainty would take whole triples.
    rng = np.random.default_rng(0)
    X3 = np.concatenate([X, X + rng.normal(scale=1e-3, size=X.shape), X + rng.normal(scale=1e-3, size=X.shape)])
    P3, L3 = np.concatenate([proba] * 3), np.concatenate([labelled, np.zeros_like(labelled), np.zeros_like(labelled)])
    margin = create_strategy("margin").select(X3, P3, L3, 20)
    xm = l2_normalise(X3[margin.indices])
    assert (np.triu(xm @ xm.T, 1) > 0.98).any()  # the baseline really does pick duplicates here
    sel = create_strategy("mixed", seed=0).select(X3, P3, L3, 20)
    _check_selection(sel, L3, np.zeros(len(X3), dtype=bool), 20)
    xs = l2_normalise(X3[sel.indices])
    assert not (np.triu(xs @ xs.T, 1) > 0.98).any()
    # nor near-copies of what is already labelled
    assert not ((xs @ l2_normalise(X3[L3]).T) > 0.98).any()


def test_mixed_switches_to_uncertainty_after_cold_start(digits, digits_state):
    X, _ = digits
    labelled, proba = digits_state
    sel = create_strategy("mixed", cold_start_labels=20).select(X, proba, labelled, 10)
    assert sel.strategy == "mixed" and all(r.startswith("torn;") and "measure=margin" in r for r in sel.reasons)
    scores = create_strategy("margin").score_all(X, proba, labelled)
    # uncertainty within diversity: the picks come from the most uncertain tenth of the pool
    assert np.all(scores[sel.indices] >= np.quantile(scores[~labelled], 0.9))


def test_typical_first_keeps_the_cold_start_to_five_labels_a_class_and_at_least_100(digits, digits_state):
    """The text default: typical picks until max(5 per class, 100) labels, then margin within diversity."""
    X, _ = digits
    labelled, proba = digits_state  # 40 labels, 10 classes
    assert create_strategy("typical_first").select(X, proba, labelled, 10).strategy == "cold_start"
    hundred = labelled.copy()
    hundred[np.flatnonzero(~labelled)[:60]] = True
    sel = create_strategy("typical_first").select(X, proba, hundred, 10)
    assert sel.strategy == "typical_first" and all(r.startswith("torn;") for r in sel.reasons)
    # 77 classes (BANKING77): 100 labels are not 5 a class yet
    proba77 = np.random.default_rng(0).dirichlet(np.ones(77), len(X))
    assert create_strategy("typical_first").select(X, proba77, hundred, 10).strategy == "cold_start"
    assert create_strategy("mixed").select(X, proba77, hundred, 10).strategy == "mixed"  # one a class: done


def test_temperature_sampling_records_probabilities(digits, digits_state):
    X, _ = digits
    labelled, proba = digits_state
    sel = create_strategy("margin", seed=0, temperature=0.1).select(X, proba, labelled, 10)
    assert np.all((sel.probabilities > 0) & (sel.probabilities < 1))


@pytest.mark.parametrize("name", ["margin", "entropy", "least_confidence"])
def test_an_uncertainty_strategy_without_a_model_records_random_picks(name):
    X = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    sel = create_strategy(name).select(X, None, np.zeros(50, dtype=bool), 5)
    assert sel.strategy == "random" and sel.reasons == ["random"] * 5


def test_uncertain_picks_name_the_two_classes_the_model_hesitates_between():
    proba = np.array([[0.98, 0.01, 0.01], [0.1, 0.45, 0.45], [0.7, 0.2, 0.1], [0.5, 0.1, 0.4]])
    X = np.eye(4, dtype=np.float32)
    sel = create_strategy("margin").select(X, proba, np.zeros(4, dtype=bool), 2)
    assert sel.reasons[0].startswith("torn;a=1;b=2;pa=0.450;pb=0.450;measure=margin")
    assert sel.reasons[1].startswith("torn;a=0;b=2;pa=0.500;pb=0.400")
