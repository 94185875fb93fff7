"""A calibrated logistic-regression probe on embeddings: the "shallow model on representations"."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from .base import LoupeClassifier, softmax


def _preprocess(X: np.ndarray, normalize: str | None) -> np.ndarray:
    if normalize == "l2":
        # Self-supervised embeddings carry their meaning in direction, not length (they are trained with
        # cosine losses); unit rows also make C mean the same thing across backbones. The sqrt(D) factor
        # keeps the logits' scale independent of the width.
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        # A Python float scalar: numpy's float64 scalar would upcast float32 rows to float64 (NEP 50),
        # doubling the memory traffic of scoring a million rows.
        return X / np.maximum(norms, 1e-12) * float(np.sqrt(X.shape[1]))
    if normalize is None or normalize == "none":
        return X
    raise ValueError(f"unknown normalize {normalize!r}")


def _logits(model: LogisticRegression, X: np.ndarray) -> np.ndarray:
    z = model.decision_function(X)
    if z.ndim == 1:  # binary: scikit-learn returns one margin; make it a 2-column logit matrix
        z = np.column_stack([-z / 2, z / 2])
    return z


class LogisticProbe(LoupeClassifier):
    """Multinomial logistic regression with temperature scaling (Guo et al., ICML 2017).

    The temperature is fitted on cross-validated logits of the labelled set as soon as every seen class
    has two labels (3-fold); before that it is 1. With one seen class it predicts smoothed label frequencies.

    Args:
        C: inverse L2 regularisation strength.
        n_classes: the full class count (columns of ``predict_proba``); None takes the labels seen.
        normalize: ``"l2"`` (unit rows scaled by sqrt(D)) or None.
        calibrate: fit the temperature by cross-validation.
        class_weight: passed to LogisticRegression; ``"balanced"`` helps when active picks skew classes.
        max_iter: L-BFGS iterations.
    """

    def __init__(self, C=1.0, n_classes=None, normalize="l2", calibrate=True, class_weight=None, max_iter=1000):
        self.C = C
        self.n_classes = n_classes
        self.normalize = normalize
        self.calibrate = calibrate
        self.class_weight = class_weight
        self.max_iter = max_iter

    def _new_model(self) -> LogisticRegression:
        return LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter)

    def fit(self, X, y):
        X, codes, _ = self._validate_fit(X, y)
        Xp = _preprocess(X, self.normalize)
        self.seen_classes_ = np.unique(codes)
        self.class_counts_ = np.bincount(codes, minlength=len(self.classes_))[self.seen_classes_]
        self.temperature_ = 1.0
        self.n_iter_ = np.zeros(1, dtype=np.int32)
        if len(self.seen_classes_) < 2:
            self.model_ = None
            return self
        local = np.searchsorted(self.seen_classes_, codes)
        self.model_ = self._new_model().fit(Xp, local)
        self.n_iter_ = self.model_.n_iter_
        if self.calibrate:
            self.temperature_ = self._fit_temperature(Xp, local)
        return self

    def _fit_temperature(self, Xp: np.ndarray, local: np.ndarray) -> float:
        counts = np.bincount(local)
        folds = int(min(3, counts.min()))  # 3 folds: 4 fits per refit, not 6, for a similar temperature
        if folds < 2:
            return 1.0
        logits = np.zeros((len(local), len(counts)))
        for tr, te in StratifiedKFold(folds, shuffle=True, random_state=0).split(Xp, local):
            m = self._new_model().fit(Xp[tr], local[tr])
            logits[np.ix_(te, m.classes_)] = _logits(m, Xp[te])
            missing = np.setdiff1d(np.arange(len(counts)), m.classes_)
            logits[np.ix_(te, missing)] = -1e3

        def nll(log_t: float) -> float:
            p = softmax(logits / np.exp(log_t))
            return float(-np.mean(np.log(p[np.arange(len(local)), local] + 1e-12)))

        res = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
        return float(np.exp(res.x))

    def predict_proba(self, X):
        X = self._validate_predict(X)
        if self.model_ is None:
            return self._prior_proba(len(X), self.seen_classes_, self.class_counts_)
        p_seen = softmax(_logits(self.model_, _preprocess(X, self.normalize)) / self.temperature_)
        out = np.zeros((len(X), len(self.classes_)))
        out[:, self.seen_classes_] = p_seen
        return out
