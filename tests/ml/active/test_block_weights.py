"""The weighted:k embedding layer (a learned weighted sum of backbone blocks, ml/block_weights.py) and
co-training on two layers of one backbone, as the train job's round (ml/fit.py) uses them."""

import numpy as np
import pytest

from ml.block_weights import MIN_LABELS, apply_block_weights, equal_weights, is_weighted, learn_block_weights
from ml.fit import Pool, fit_round


def _unit_blocks(*parts: np.ndarray) -> np.ndarray:
    """concat:k as the embedding stores it: each block L2-normalised, the whole unit length."""
    normed = [p / np.linalg.norm(p, axis=1, keepdims=True) for p in parts]
    return (np.concatenate(normed, axis=1) / np.sqrt(len(parts))).astype(np.float32)


def _two_blocks(digits, noise_width: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Block 0: the digits' pixels (informative); block 1: noise of no class."""
    X, y = digits
    noise = np.random.default_rng(seed).normal(size=(len(y), noise_width))
    return _unit_blocks(X + 1e-3, noise), y


def test_equal_weights_leave_a_concat_vector_as_it_is():
    X = _unit_blocks(*(np.random.default_rng(0).normal(size=(20, w)) for w in (3, 5, 8)))
    np.testing.assert_allclose(apply_block_weights(X, equal_weights((3, 5, 8), "")), X, rtol=1e-6)


def test_the_informative_block_gets_the_weight_and_vectors_stay_unit_length(digits):
    X, y = _two_blocks(digits)
    w = learn_block_weights(X[:200], y[:200], (64, 48))
    assert w.learned and w.weights[0] > 0.8 > w.weights[1], w
    assert abs(sum(w.weights) - 1) < 1e-9
    np.testing.assert_allclose(np.linalg.norm(apply_block_weights(X, w), axis=1), 1.0, rtol=1e-3)


def test_two_blocks_that_each_carry_half_the_signal_keep_both(digits):
    """The leave-one-out check keeps a mix when each block alone does worse (alignf alone may drop one)."""
    X, y = digits
    both = _unit_blocks(X[:, :32] + 1e-3, X[:, 32:] + 1e-3)  # top and bottom halves of each digit
    w = learn_block_weights(both[:300], y[:300], (32, 32))
    assert w.learned and min(w.weights) > 0.3, w
    assert "alone" not in w.note and "leave-one-out error" in w.note


def test_too_few_labels_or_one_class_keep_equal_weights_and_say_so(digits):
    X, y = _two_blocks(digits)
    few = learn_block_weights(X[:MIN_LABELS - 1], y[:MIN_LABELS - 1], (64, 48))
    assert not few.learned and few.weights == (0.5, 0.5) and "equal weights" in few.note
    one = learn_block_weights(X[y == 3][:40], y[y == 3][:40], (64, 48))
    assert not one.learned and one.weights == (0.5, 0.5)
    with pytest.raises(ValueError, match="do not add up"):
        learn_block_weights(X, y, (64, 40))


def test_layer_choices_weighted_and_its_count():
    from ml.embedding import layer_for, parse_layer

    assert is_weighted("weighted") and is_weighted("weighted:3") and not is_weighted("concat:3")
    assert parse_layer("weighted:3", 4) == parse_layer("concat:3", 4) == [1, 2, 3]
    assert parse_layer("weighted", 4) == [0, 1, 2, 3]
    assert layer_for("weighted:3", 2) == "weighted:2" and layer_for("weighted:3", 1) == "last"
    with pytest.raises(ValueError, match="weighted:k needs"):
        parse_layer("weighted:5", 4)


def _pool(X, y, n_labels, blocks, weighted) -> Pool:
    labels = np.full(len(y), -1)
    chosen = np.random.default_rng(1).choice(len(y), n_labels, replace=False)
    labels[chosen] = y[chosen]
    audit = np.zeros(len(y), bool)
    audit[::10] = True
    return Pool(ids=np.arange(len(y)), X=X, y=labels, audit=audit, blocks=blocks, weighted=weighted)


def _round(pool: Pool, estimator: str = "logistic"):
    return fit_round(pool, 10, estimator=estimator, strategy="margin", batch_size=10, curve=[], target_accuracy=0.95)


def test_a_weighted_round_learns_the_weights_and_beats_equal_ones_on_a_noisy_block(digits):
    # Noise four times as wide as the pixels drowns them under equal weights; the learned weighting finds them.
    X, y = _two_blocks(digits, noise_width=256)
    weighted = _round(_pool(X, y, 150, (64, 256), True))
    equal = _round(_pool(X, y, 150, (64, 256), False))
    bw = weighted.metrics["block_weights"]
    assert bw["learned"] and bw["weights"][0] > 0.8 and bw["blocks"] == [64, 256]
    assert "block_weights" not in equal.metrics
    acc = lambda r: float((r.proba.argmax(1) == y).mean())  # noqa: E731
    assert acc(weighted) > acc(equal) + 0.05, (acc(weighted), acc(equal))
    few = _round(_pool(X, y, 12, (64, 256), True)).metrics["block_weights"]
    assert not few["learned"] and "equal weights" in few["note"]


def test_co_training_takes_its_two_views_from_the_blocks(digits):
    X, y = (a[:600] for a in _two_blocks(digits, noise_width=16))  # co-training fits a dozen probes: keep it small
    by_blocks = _round(_pool(X, y, 60, (64, 16), False), "co_training")
    assert by_blocks.estimator == "co_training" and by_blocks.proba is not None
    assert by_blocks.metrics["views"].startswith("the last block (16 wide)")
    assert len(by_blocks.metrics["pseudo_labelled"]) == 2
    halves = _round(_pool(X, y, 60, None, False), "co_training")
    assert halves.metrics["views"].startswith("halves")
    weighted = _round(_pool(X, y, 60, (64, 16), True), "co_training")  # both: weights, then two views
    assert weighted.metrics["block_weights"]["learned"] and "views" in weighted.metrics
