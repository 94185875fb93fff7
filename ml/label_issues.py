"""Likely label errors among the human labels (issue 18): confident learning on out-of-fold probabilities.

Arrays in, arrays out. Every label is scored by a model that never saw it (stratified k-fold of the
project's probe on the current embeddings), then confident learning (Northcutt, Jiang & Chuang, "Confident
Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021) decides which labels to doubt:

* per-class threshold t_j = the mean out-of-fold probability of class j over the samples labelled j (how
  sure the model is of that class when the label is right, on average: a hard class gets a low bar);
* a sample labelled i counts in the confident joint at (i, j) where j is the most probable of the classes
  whose probability clears their threshold; it is doubted when j != i (an off-diagonal entry);
* doubted samples are ranked by self-confidence, lowest first (score 1 - p[i]): how little the model
  believes the given label. On planted MNIST flips it put more flips in the first 50 than the normalized
  margin p[j*] - p[i] did (40 against 36, untrained backbone concat:3; docs/benchmarks.md).

The evidence shown beside each: its nearest labelled neighbours by cosine on the embeddings, with their
labels, so the expert sees why the model disagrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from ml.estimators import create_estimator

# Ten folds: each held-out label is scored by a model fitted on 90% of the others (on planted MNIST flips,
# 39 of 50 in the first 50 against 36 with five folds, docs/benchmarks.md).
FOLDS = 10
NEIGHBOURS = 5


@dataclass
class LabelIssues:
    """Doubted labels, most likely wrong first; rows index the arrays given to ``find_label_issues``."""

    rows: np.ndarray  # (K,) int64 rows of the labelled arrays
    suggested: np.ndarray  # (K,) int64 the model's alternative class
    score: np.ndarray  # (K,) float64 in [0, 1]: 1 - p[label], higher is more likely wrong
    neighbours: np.ndarray  # (K, k) int64 rows of the nearest other labelled samples (-1 past the end)
    neighbour_sim: np.ndarray  # (K, k) float32 their cosine similarity
    thresholds: np.ndarray  # (C,) per-class thresholds used
    confident_joint: np.ndarray  # (C, C) int64 counts (given label, confident class)


def out_of_fold_proba(X: np.ndarray, y: np.ndarray, n_classes: int, *, folds: int = FOLDS,
                      estimator: str = "logistic", seed: int = 0) -> np.ndarray:
    """(N, C) probabilities for each labelled row from a model fitted on the other folds.

    A class with fewer labels than folds still takes part (StratifiedKFold spreads what it has); a
    class with a single label cannot be held out and predicted at once, so its row keeps the fold's
    answer without it, which is what an honest model would say."""
    y = np.asarray(y, dtype=np.int64)
    counts = np.bincount(y, minlength=n_classes)
    k = int(max(2, min(folds, counts[counts > 0].min() if (counts > 1).any() else 2)))
    k = min(k, len(y))
    proba = np.zeros((len(y), n_classes), dtype=np.float64)
    splitter = StratifiedKFold(k, shuffle=True, random_state=seed)
    # The probe's temperature is left at 1: the ranking compares self-confidence within a class (against
    # that class's mean), which one temperature barely moves, and fitting it costs three more fits a fold.
    params = {"calibrate": False} if estimator == "logistic" else {}
    for train, test in splitter.split(np.zeros(len(y)), y):
        est = create_estimator(estimator, n_classes=n_classes, **params)
        est.fit(np.asarray(X[train], dtype=np.float32), y[train])
        proba[test] = est.predict_proba(np.asarray(X[test], dtype=np.float32))
    return proba


def thresholds(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-class thresholds: mean self-confidence of each class's labelled samples (inf for a class
    with no label, so nothing is ever confidently that class)."""
    C = proba.shape[1]
    t = np.full(C, np.inf)
    for j in range(C):
        rows = y == j
        if rows.any():
            t[j] = proba[rows, j].mean()
    # Floating error must not keep the only sample of a class from clearing its own mean.
    return t - 1e-12


def confident_classes(proba: np.ndarray, t: np.ndarray) -> np.ndarray:
    """For each row, the most probable class among those above their threshold; -1 where none is."""
    above = proba >= t[None, :]
    masked = np.where(above, proba, -np.inf)
    best = masked.argmax(1)
    return np.where(above.any(1), best, -1)


def rank_issues(proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rows, suggested, score, thresholds, confident joint): the off-diagonal rows of the confident
    joint, ranked by self-confidence p[given], lowest first (score 1 - p[given])."""
    y = np.asarray(y, dtype=np.int64)
    C = proba.shape[1]
    t = thresholds(proba, y)
    conf = confident_classes(proba, t)
    joint = np.zeros((C, C), dtype=np.int64)
    has = conf >= 0
    np.add.at(joint, (y[has], conf[has]), 1)
    rows = np.flatnonzero(has & (conf != y))
    suggested = conf[rows]
    score = 1.0 - proba[rows, y[rows]]
    margin = proba[rows, suggested] - proba[rows, y[rows]]
    # Ties (equal self-confidence) broken by the larger margin, then the row: a stable, repeatable list.
    order = np.lexsort((rows, -margin, -score))
    return rows[order], suggested[order], score[order], t, joint


def nearest_labelled(X: np.ndarray, rows: np.ndarray, k: int = NEIGHBOURS,
                     block: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """The k most cosine-similar other rows of X for each of ``rows`` ((K, k) rows, (K, k) similarity),
    in blocks so that a long list never holds a K x N matrix."""
    U = np.asarray(X, dtype=np.float32)
    U = U / np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-12)
    k_eff = min(k, len(U) - 1)
    idx = np.full((len(rows), k), -1, dtype=np.int64)
    sim = np.zeros((len(rows), k), dtype=np.float32)
    if k_eff <= 0:
        return idx, sim
    for s in range(0, len(rows), block):
        r = rows[s:s + block]
        S = U[r] @ U.T
        S[np.arange(len(r)), r] = -np.inf  # not its own neighbour
        top = np.argpartition(-S, k_eff - 1, axis=1)[:, :k_eff]
        top_s = np.take_along_axis(S, top, 1)
        order = np.argsort(-top_s, axis=1, kind="stable")
        idx[s:s + len(r), :k_eff] = np.take_along_axis(top, order, 1)
        sim[s:s + len(r), :k_eff] = np.take_along_axis(top_s, order, 1)
    return idx, sim


def find_label_issues(X: np.ndarray, y: np.ndarray, n_classes: int, *, estimator: str = "logistic",
                      folds: int = FOLDS, k: int = NEIGHBOURS, limit: int | None = None,
                      proba: np.ndarray | None = None) -> LabelIssues:
    """The doubted labels among the labelled rows (``X`` their embeddings, ``y`` class indices).

    ``proba``: out-of-fold probabilities already computed (the bench passes them to compare with
    cleanlab on the same numbers); otherwise they are computed here. ``limit``: keep the first ones only
    (neighbours are looked up for those)."""
    # One class: nothing to disagree with; no class with two labels: no label can be held out and still
    # leave its class in the fit (StratifiedKFold refuses), so there is nothing honest to say yet.
    if len(y) < 2 or len(np.unique(y)) < 2 or np.bincount(np.asarray(y, dtype=np.int64)).max() < 2:
        C = n_classes
        e = np.zeros(0, dtype=np.int64)
        return LabelIssues(e, e, np.zeros(0), np.zeros((0, k), np.int64), np.zeros((0, k), np.float32),
                           np.full(C, np.inf), np.zeros((C, C), np.int64))
    if proba is None:
        proba = out_of_fold_proba(X, y, n_classes, folds=folds, estimator=estimator)
    rows, suggested, score, t, joint = rank_issues(proba, y)
    if limit is not None:
        rows, suggested, score = rows[:limit], suggested[:limit], score[:limit]
    nb, nb_sim = nearest_labelled(X, rows, k)
    return LabelIssues(rows=rows, suggested=suggested, score=score, neighbours=nb, neighbour_sim=nb_sim,
                       thresholds=t, confident_joint=joint)
