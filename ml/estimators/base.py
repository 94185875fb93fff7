"""Shared pieces for Loupe's estimators: the class space and the "fewer than two classes seen" case.

The service passes class indices 0..C-1 and ``n_classes=C``, so ``predict_proba`` always has C columns,
even when the expert has only labelled one or two classes so far. Without ``n_classes`` the estimators
behave like any scikit-learn classifier (classes are whatever labels ``fit`` saw).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

UNLABELLED = -1


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class LoupeClassifier(ClassifierMixin, BaseEstimator):
    """Base: validates input, fixes ``classes_``, maps labels to column indices.

    Subclasses set ``semi_supervised = True`` when ``y == -1`` marks unlabelled rows that take part in the
    fit (label spreading, co-training).
    """

    semi_supervised = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    def _validate_fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=[np.float32, np.float64], y_numeric=False)
        check_classification_targets(y)
        n_classes = getattr(self, "n_classes", None)
        labelled = np.ones(len(y), dtype=bool)
        if self.semi_supervised and np.issubdtype(np.asarray(y).dtype, np.number):
            labelled = y != UNLABELLED
        if n_classes is not None:
            self.classes_ = np.arange(int(n_classes))
            ys = y[labelled].astype(np.int64)
            if np.any((ys < 0) | (ys >= n_classes)):
                raise ValueError(f"labels must be class indices in [0, {n_classes})")
            codes = ys
        else:
            self.classes_, codes = np.unique(y[labelled], return_inverse=True)
            if len(self.classes_) == 0:
                raise ValueError("at least one labelled sample is needed")
        if len(self.classes_) < 2 and n_classes is None:
            # scikit-learn's rule: a classifier fitted on one class without a declared class space is an
            # error; with n_classes the service's "first label" case is valid.
            raise ValueError("y has only one class; pass n_classes to fit from the first label")
        y_codes = np.full(len(y), UNLABELLED, dtype=np.int64)
        y_codes[labelled] = codes
        return X, y_codes, labelled

    def _validate_predict(self, X):
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=[np.float32, np.float64])

    def _prior_proba(self, n_rows: int, seen: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """What to say with fewer than two seen classes: the label frequencies, smoothed, so an unseen
        class is possible but unlikely."""
        p = np.full(len(self.classes_), 0.5)
        p[seen] += counts
        p /= p.sum()
        return np.tile(p, (n_rows, 1))

    def predict(self, X):
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
