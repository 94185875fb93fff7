"""How well an embedding separates the expert's own labels: the figure a project's background
pretraining must improve before the project switches to a newer backbone.

Two figures, by how many labels there are:
* ``probe``: cross-validated accuracy of a logistic regression on the embeddings (what the project's
  default estimator does with them), once every labelled class has at least ``PROBE_MIN_PER_CLASS``;
* ``knn``: leave-one-out nearest-neighbour accuracy (cosine) while labels are fewer: it needs no
  fitting, so it stays meaningful with two labels per class, where a cross-validated fit does not.
Both embeddings of one comparison are scored by the same figure on the same labelled samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PROBE_MIN_PER_CLASS = 5


@dataclass(frozen=True)
class Score:
    kind: str  # "probe" or "knn"
    accuracy: float
    labels: int

    def as_dict(self) -> dict:
        return {"kind": self.kind, "accuracy": round(self.accuracy, 4), "labels": self.labels}


def figure_kind(labels: np.ndarray) -> str | None:
    """Which figure these labels support: None below two classes with two labels each."""
    _, counts = np.unique(labels, return_counts=True)
    if len(counts) < 2 or (counts >= 2).sum() < 2:
        return None
    return "probe" if counts.min() >= PROBE_MIN_PER_CLASS else "knn"


def score(vectors: np.ndarray, labels: np.ndarray, kind: str, seed: int = 0) -> Score:
    """The ``kind`` figure of ``vectors`` (one row per labelled sample) on ``labels``."""
    x = np.asarray(vectors, dtype=np.float32)
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-8)
    y = np.asarray(labels)
    if kind == "knn":
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)  # leave one out: a sample is not its own neighbour
        acc = float((y[sim.argmax(axis=1)] == y).mean())
    elif kind == "probe":
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        _, counts = np.unique(y, return_counts=True)
        folds = StratifiedKFold(n_splits=int(min(5, counts.min())), shuffle=True, random_state=seed)
        acc = float(cross_val_score(LogisticRegression(max_iter=1000), x, y, cv=folds).mean())
    else:
        raise ValueError(f"unknown figure {kind!r}")
    return Score(kind, acc, len(y))


@dataclass(frozen=True)
class Comparison:
    """A new embedding against the one in use, by the same figure on the same labelled samples."""

    labels: int  # the labelled samples both embeddings cover
    kind: str | None  # the figure ("probe" or "knn"); None: too few labels to compare
    new: float | None = None
    current: float | None = None


def compare(new_vectors: np.ndarray, ids: np.ndarray, labels: list, cur_ids: np.ndarray,
            cur_vectors: np.ndarray) -> Comparison:
    """``new_vectors`` (N, D), one row per sample ``ids`` (N,), with ``labels`` (N, None where
    unlabelled), against the embedding in use: ``cur_vectors`` (M, D') for ``cur_ids`` (M,, ascending).

    Only labelled samples the embedding in use covers take part (one imported after it has no row)."""
    labelled = np.array([lab is not None for lab in labels], dtype=bool) & np.isin(ids, cur_ids)
    y = np.array([lab for lab, m in zip(labels, labelled, strict=True) if m])
    kind = figure_kind(y) if len(y) else None
    if kind is None:
        return Comparison(int(len(y)), None)
    new = score(np.asarray(new_vectors)[labelled], y, kind)
    current = score(np.asarray(cur_vectors)[np.searchsorted(cur_ids, ids[labelled])], y, kind)
    return Comparison(int(len(y)), kind, new.accuracy, current.accuracy)
