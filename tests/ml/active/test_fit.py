"""One round of active learning on arrays (``ml.fit``): alignment of embeddings with the pool, the honest
audit estimate, and the queue order and reasons the train job stores."""

import numpy as np
import pytest

from ml.fit import REASONED_PAST_BATCH, Pool, align, fit_round


def test_align_keeps_embedded_samples_of_the_pool_with_their_labels_and_audit_flags():
    pool_ids = np.array([2, 4, 6, 8, 10])
    pool_audit = np.array([False, True, False, True, False])
    emb_ids = np.array([1, 2, 6, 7, 8, 10, 11])  # 1, 7, 11: deleted samples; 4: not embedded yet
    X = np.arange(len(emb_ids) * 2, dtype=np.float32).reshape(-1, 2)
    pool = align(emb_ids, X, pool_ids, pool_audit, np.array([8, 2]), np.array([1, 0]))
    np.testing.assert_array_equal(pool.ids, [2, 6, 8, 10])
    np.testing.assert_array_equal(pool.X, X[[1, 2, 4, 5]])
    np.testing.assert_array_equal(pool.y, [0, -1, 1, -1])
    np.testing.assert_array_equal(pool.audit, [False, False, True, False])


def test_align_passes_the_embedding_through_when_every_row_is_in_the_pool():
    X = np.ones((3, 2), np.float16)
    pool = align(np.array([1, 2, 3]), X, np.array([1, 2, 3]), np.zeros(3, bool), np.array([], np.int64),
                 np.array([], np.int64))
    assert pool.X is X and (pool.y == -1).all()  # a memory map is not copied


def _pool(digits, n_labels: int, audit_every: int = 10) -> Pool:
    X, y = digits
    labels = np.full(len(y), -1)
    chosen = np.random.default_rng(1).choice(len(y), n_labels, replace=False)
    labels[chosen] = y[chosen]
    audit = np.zeros(len(y), bool)
    audit[::audit_every] = True
    return Pool(ids=np.arange(100, 100 + len(y)), X=X, y=labels, audit=audit)


def _round(pool: Pool, **kw):
    args = {"estimator": "logistic", "strategy": "mixed", "batch_size": 12, "curve": [], "target_accuracy": 0.95}
    return fit_round(pool, 10, **(args | kw))


def test_without_labels_there_is_no_model_and_the_cold_start_picks_the_batch(digits):
    pool = _pool(digits, 0)
    seen = []
    result = _round(pool, progress=lambda f, msg: seen.append((f, msg)))
    assert result.proba is None and result.estimator == "none"
    assert result.chosen_by == "cold_start"
    assert [f for f, _ in seen] == [0.0, 0.5]
    assert "accuracy_estimate" not in result.metrics and "labels_to_target" not in result.metrics
    assert result.metrics["labels"] == 0 and result.metrics["samples"] == len(pool.ids)


def test_the_batch_comes_first_in_its_order_and_every_served_item_has_a_reason(digits):
    pool = _pool(digits, 60)
    result = _round(pool)
    order = np.argsort(-result.priority, kind="stable")
    batch = order[:12]
    assert not (pool.labelled[batch] | pool.audit[batch]).any()
    assert (np.diff(result.priority[batch]) < 0).all()  # the strategy's own order
    assert all(result.reasons[i] for i in batch)
    served = ~(pool.labelled | pool.audit)
    reasoned = np.array([r is not None for r in result.reasons])
    assert not reasoned[~served].any()  # labelled and audit rows are never served by the model's order
    assert reasoned.sum() == min(served.sum(), 12 + REASONED_PAST_BATCH)
    assert result.proba.shape == (len(pool.ids), 10) and result.estimator == "logistic"
    assert len(result.metrics["predicted"]) == 10 and sum(result.metrics["predicted"]) == (~pool.labelled).sum()


@pytest.mark.parametrize("estimator", ["logistic", "label_spreading"])
def test_the_estimate_comes_from_a_model_that_never_saw_the_audit_labels(digits, estimator):
    pool = _pool(digits, 300, audit_every=4)
    audit_rows = pool.labelled & pool.audit
    result = _round(pool, estimator=estimator)
    m = result.metrics
    confusion = np.array(m["confusion"])
    assert confusion.sum() == audit_rows.sum() == m["audit_labels"]
    np.testing.assert_array_equal(confusion.sum(1), np.bincount(pool.y[audit_rows], minlength=10))
    assert m["accuracy_estimate"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert m["ci_low"] <= m["accuracy_estimate"] <= m["ci_high"]
    assert m["labels_to_target"]["target"] == 0.95
    if estimator == "logistic":  # the same figure from a probe fitted by hand on the other labels
        from ml.estimators import create_estimator

        train = pool.labelled & ~pool.audit
        est = create_estimator("logistic", n_classes=10).fit(pool.X[train], pool.y[train])
        pred = est.predict_proba(pool.X[audit_rows]).argmax(1)
        assert m["accuracy_estimate"] == pytest.approx(float((pred == pool.y[audit_rows]).mean()))


def test_the_learning_curve_gains_this_rounds_estimate(digits):
    pool = _pool(digits, 300, audit_every=4)
    curve = [(20, 0.5), (50, 0.7), (100, 0.82), (200, 0.9)]
    result = _round(pool, curve=curve, target_accuracy=0.99)
    need = result.metrics["labels_to_target"]
    assert need["target"] == 0.99 and need["curve_levels_at"] is not None
    assert need["labels_needed"] is None or need["labels_needed"] > 300


def test_a_class_with_few_labels_asks_for_unexplored_samples(digits):
    pool = _pool(digits, 15, audit_every=1000)  # 15 labels over 10 classes: some class has fewer than 5
    result = _round(pool)
    unexplored = result.metrics["unexplored"]
    assert len(unexplored) == 48 and set(unexplored) <= set(pool.ids.tolist())
    assert "unexplored" not in _round(_pool(digits, 1000, audit_every=1000)).metrics
