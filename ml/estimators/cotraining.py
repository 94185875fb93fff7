"""Co-training across two views of the same samples (Blum & Mitchell, COLT 1998).

X holds both views side by side: columns ``[:view_split]`` are view A, the rest view B. The service's
``co_training`` estimator takes them from one embedding: two layers of the project's backbone, the last
block and the blocks before it (``ml.fit.views``); a benchmark may pass any two feature sets side by side.
Each round, each view's probe labels the unlabelled rows it is surest of, and those rows join the *other*
view's training pool. It stops when the added predictions are no longer confident, or the two views start
to disagree more on the unlabelled rows.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

from .base import LoupeClassifier
from .probe import LogisticProbe


class CoTraining(LoupeClassifier):
    """Two-view co-training of logistic probes; ``y == -1`` marks unlabelled rows.

    Args:
        view_split: column where view B starts; None splits the columns in half.
        base_estimator: estimator cloned for each view (default a LogisticProbe).
        per_round: pseudo-labels each view hands the other per round, per class.
        max_rounds: upper bound on rounds.
        min_confidence: stop once the mean confidence of the rows to hand over falls below this.
        agreement_drop: stop once agreement on unlabelled rows falls this much below its best.
        n_classes: the full class count; None takes the labels seen.
    """

    semi_supervised = True

    def __init__(
        self,
        view_split=None,
        base_estimator=None,
        per_round=5,
        max_rounds=10,
        min_confidence=0.9,
        agreement_drop=0.02,
        n_classes=None,
    ):
        self.view_split = view_split
        self.base_estimator = base_estimator
        self.per_round = per_round
        self.max_rounds = max_rounds
        self.min_confidence = min_confidence
        self.agreement_drop = agreement_drop
        self.n_classes = n_classes

    def _views(self, X):
        split = self.view_split if self.view_split is not None else max(X.shape[1] // 2, 1)
        if X.shape[1] < 2:  # one column cannot be two views; both views see it
            return X, X
        return X[:, :split], X[:, split:]

    def _base(self, final: bool):
        base = self.base_estimator if self.base_estimator is not None else LogisticProbe()
        est = clone(base).set_params(n_classes=len(self.classes_))
        if not final and "calibrate" in est.get_params():
            # Rounds only rank rows by confidence; calibrating (5 more fits) is kept for the final fit.
            est.set_params(calibrate=False)
        return est

    def fit(self, X, y):
        X, codes, labelled = self._validate_fit(X, y)
        views = self._views(X)
        pools = [codes.copy(), codes.copy()]  # per view: -1 = not in that view's training pool
        self.estimators_ = [None, None]
        self.agreement_history_, self.confidence_history_ = [], []
        self.n_rounds_ = 0
        best_agreement = -1.0
        for round_ in range(self.max_rounds + 1):
            for v in (0, 1):
                m = pools[v] >= 0
                self.estimators_[v] = self._base(final=False).fit(views[v][m], pools[v][m])
            unl = np.flatnonzero((pools[0] < 0) | (pools[1] < 0))
            if round_ == self.max_rounds or len(unl) == 0 or len(np.unique(codes[labelled])) < 2:
                break
            probas = [self.estimators_[v].predict_proba(views[v][unl]) for v in (0, 1)]
            agreement = float(np.mean(probas[0].argmax(1) == probas[1].argmax(1)))
            self.agreement_history_.append(agreement)
            if agreement < best_agreement - self.agreement_drop:
                break
            best_agreement = max(best_agreement, agreement)
            handed = [self._most_confident(probas[v], unl, pools[1 - v]) for v in (0, 1)]
            conf = float(np.mean([c for _, _, c in handed if c is not None] or [0.0]))
            self.confidence_history_.append(conf)
            if conf < self.min_confidence:
                break
            for v in (0, 1):
                rows, labels, _ = handed[v]
                pools[1 - v][rows] = labels  # view v teaches the other view
            self.n_rounds_ = round_ + 1
        for v in (0, 1):
            m = pools[v] >= 0
            self.estimators_[v] = self._base(final=True).fit(views[v][m], pools[v][m])
        self.pseudo_labelled_ = [int((p >= 0).sum() - labelled.sum()) for p in pools]
        return self

    def _most_confident(self, proba, unl, other_pool):
        """Rows (of unl) not yet in the other view's pool that this view is surest of, per class."""
        free = other_pool[unl] < 0
        pred, conf = proba.argmax(1), proba.max(1)
        rows, labels = [], []
        for c in np.unique(pred[free]):
            cand = np.flatnonzero(free & (pred == c))
            best = cand[np.argsort(-conf[cand], kind="stable")[: self.per_round]]
            rows.append(best), labels.append(np.full(len(best), c))
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), None
        rows, labels = np.concatenate(rows), np.concatenate(labels)
        return unl[rows], labels, float(conf[rows].mean())

    def predict_proba(self, X):
        X = self._validate_predict(X)
        a, b = self._views(X)
        # Product of the two views' beliefs (they are meant to be conditionally independent), renormalised.
        p = self.estimators_[0].predict_proba(a) * self.estimators_[1].predict_proba(b) + 1e-12
        return p / p.sum(axis=1, keepdims=True)
