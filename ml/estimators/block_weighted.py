"""Any estimator on a learned weighted sum of backbone blocks (the ``weighted:k`` layer, ml/block_weights.py).

The embedding stores the blocks side by side with equal weights (``concat:k``); the weights are learned
on the labels each time the estimator is fitted, so they follow the labels without re-embedding, and the
audit estimate's model learns its own without the audit labels (the estimate stays honest).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from ml.block_weights import MIN_LABELS, apply_block_weights, learn_block_weights

from .base import UNLABELLED, LoupeClassifier


class BlockWeighted(LoupeClassifier):
    """Scale each block of X by its learned weight, then fit or ask ``estimator``.

    Args:
        estimator: the estimator fitted on the weighted vectors (cloned).
        blocks: the blocks' widths, in column order.
        min_labels: fewer labels keep equal weights.
    """

    def __init__(self, estimator=None, blocks=(), min_labels=MIN_LABELS):
        self.estimator = estimator
        self.blocks = blocks
        self.min_labels = min_labels

    @property
    def semi_supervised(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.estimator, "semi_supervised", False))

    def fit(self, X, y):
        X, y = np.asarray(X), np.asarray(y)
        labelled = y != UNLABELLED if self.semi_supervised else np.ones(len(y), dtype=bool)
        self.weights_ = learn_block_weights(X[labelled], y[labelled], self.blocks, self.min_labels)
        self.estimator_ = clone(self.estimator).fit(apply_block_weights(X, self.weights_), y)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X):
        return self.estimator_.predict_proba(apply_block_weights(X, self.weights_))
