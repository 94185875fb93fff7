"""Likely label errors among the human labels (issue 18): confident learning on out-of-fold probabilities.

Arrays in, arrays out. Every label is scored by a model that never saw it (stratified k-fold of the
project's probe on the current embeddings), then confident learning (Northcutt, Jiang & Chuang, "Confident
Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021) decides which labels to doubt:

* per-class threshold t_j = the mean out-of-fold probability of class j over the samples labelled j (how
  sure the model is of that class when the label is right, on average: a hard class gets a low bar);
* a sample labelled i counts in the confident joint at (i, j) where j is the most probable of the classes
  whose probability clears their threshold (a sample where no class clears it is not counted);
* how many labels of class i are wrong: the joint's row i calibrated to the count of labels i (the
  paper's calibration: the rows that were counted stand for all the class's labels), less its diagonal;
* that many labels of class i are doubted, those with the lowest self-confidence p[i] (the paper's
  "prune by class"). Before, only the off-diagonal samples were doubted: a flipped label whose true class
  does not clear its bar either was never listed (planted flips, 3 draws, untrained backbone: MNIST 42.7
  of 50 in the first 50 against 39.7, EuroSAT 36.3 against 33.7; docs/benchmarks.md);
* doubted samples are ranked by self-confidence, lowest first (score 1 - p[i]): how little the model
  believes the given label. On planted MNIST flips it put more flips in the first 50 than the normalized
  margin p[j*] - p[i] did (40 against 36, untrained backbone concat:3; docs/benchmarks.md). The suggested
  class is the confident one, or else the most probable other class.

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


# Incremental rounds: new labels are scored by one model fitted on the labels scored before them, while
# the labels scored that way since the last full pass stay under this share of all; past it, the ten folds
# again (a label's score then comes from a model fitted on nearly all the others once more).
MAX_NEW_SHARE = 0.25


def update_out_of_fold(X: np.ndarray, y: np.ndarray, n_classes: int, known: np.ndarray, known_proba: np.ndarray,
                       since_full: int, *, folds: int = FOLDS, estimator: str = "logistic", seed: int = 0,
                       max_new_share: float = MAX_NEW_SHARE) -> tuple[np.ndarray, int]:
    """Out-of-fold probabilities after new labels arrived on the same embeddings: (proba (N, C), labels
    scored incrementally since the last full pass, 0 after a full one).

    ``known`` marks the rows whose label was scored before (same sample, same label, same embedding),
    ``known_proba`` their probabilities (rows of the others are ignored). Those stay as they were: each
    came from a model that never saw its label, which new labels do not change. The new rows are a
    held-out fold of their own: one model fitted on the known rows scores them, one fit instead of
    ``folds``. A full pass instead when nothing is known, when the new rows would pass ``max_new_share``
    of all (with those since the last full pass), or when a class of theirs has fewer than two known
    labels (a model that never saw a class would doubt every label of it)."""
    y = np.asarray(y, dtype=np.int64)
    known = np.asarray(known, dtype=bool)
    new = ~known
    n_new = int(new.sum())
    known_counts = np.bincount(y[known], minlength=n_classes)
    if (not known.any() or since_full + n_new > max_new_share * len(y)
            or (known_counts[np.unique(y[new])] < 2).any() or (known_counts > 0).sum() < 2):
        return out_of_fold_proba(X, y, n_classes, folds=folds, estimator=estimator, seed=seed), 0
    proba = np.zeros((len(y), n_classes), dtype=np.float64)
    proba[known] = known_proba[known]
    if n_new:
        params = {"calibrate": False} if estimator == "logistic" else {}
        est = create_estimator(estimator, n_classes=n_classes, **params)
        est.fit(np.asarray(X[known], dtype=np.float32), y[known])
        proba[new] = est.predict_proba(np.asarray(X[new], dtype=np.float32))
    return proba, since_full + n_new


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


def calibrated_errors(joint: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(C,) estimated wrong labels per given class: each row of the confident joint rescaled to the
    class's label count, less its diagonal, rounded; at most count - 1 (a class keeps one label)."""
    rows = joint.sum(1)
    off = (rows - np.diag(joint)) / np.maximum(rows, 1) * counts
    return np.clip(np.rint(off).astype(np.int64), 0, np.maximum(counts - 1, 0))


def rank_issues(proba: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rows, suggested, score, thresholds, confident joint): for each class, its calibrated count of
    wrong labels taken from its lowest self-confidence (prune by class), all ranked by self-confidence
    p[given], lowest first (score 1 - p[given])."""
    y = np.asarray(y, dtype=np.int64)
    C = proba.shape[1]
    t = thresholds(proba, y)
    conf = confident_classes(proba, t)
    joint = np.zeros((C, C), dtype=np.int64)
    has = conf >= 0
    np.add.at(joint, (y[has], conf[has]), 1)
    wrong = calibrated_errors(joint, np.bincount(y, minlength=C))
    picked = []
    for i in np.flatnonzero(wrong):
        of_i = np.flatnonzero(y == i)
        picked.append(of_i[np.lexsort((of_i, proba[of_i, i]))[:wrong[i]]])
    rows = np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
    others = np.where(np.arange(C)[None, :] == y[rows, None], -np.inf, proba[rows])
    suggested = np.where((conf[rows] >= 0) & (conf[rows] != y[rows]), conf[rows], others.argmax(1))
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
