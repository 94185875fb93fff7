"""Random sampling and the classic uncertainty strategies (least confidence, margin, entropy).

Before a model exists (``proba is None``) the uncertainty strategies fall back to a uniform random
batch, which is the textbook starting point and keeps them honest baselines for the benchmark.
"""

from __future__ import annotations

import numpy as np

from . import reasons
from .base import CHUNK, Selection, Strategy, candidate_mask


def least_confidence(proba: np.ndarray) -> np.ndarray:
    """1 - max_c p(c|x): how far the top guess is from certain."""
    out = np.empty(len(proba), dtype=np.float32)
    for s in range(0, len(proba), CHUNK):
        out[s : s + CHUNK] = 1.0 - np.max(proba[s : s + CHUNK], axis=1)
    return out


def margin_uncertainty(proba: np.ndarray) -> np.ndarray:
    """1 - (p_top1 - p_top2): high when the two best classes are close."""
    out = np.empty(len(proba), dtype=np.float32)
    if proba.shape[1] < 2:
        out[:] = 0.0
        return out
    for s in range(0, len(proba), CHUNK):
        p = np.asarray(proba[s : s + CHUNK], dtype=np.float32)
        two = -np.partition(-p, 1, axis=1)[:, :2]
        out[s : s + CHUNK] = 1.0 - (two[:, 0] - two[:, 1])
    return out


def entropy_uncertainty(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy, normalised by log C so it lies in [0, 1]."""
    out = np.empty(len(proba), dtype=np.float32)
    denom = np.log(max(proba.shape[1], 2))
    for s in range(0, len(proba), CHUNK):
        p = np.clip(np.asarray(proba[s : s + CHUNK], dtype=np.float32), 1e-12, 1.0)
        out[s : s + CHUNK] = -(p * np.log(p)).sum(axis=1) / denom
    return out


class RandomStrategy(Strategy):
    """Uniform random batch: the baseline every other strategy must beat."""

    name = "random"

    def score_all(self, embeddings, proba, labelled_mask, exclude_mask=None):
        return self._rng(labelled_mask).random(len(labelled_mask))

    def select(self, embeddings, proba, labelled_mask, batch_size, exclude_mask=None):
        cand_idx = np.flatnonzero(candidate_mask(labelled_mask, exclude_mask))
        rng = self._rng(labelled_mask)
        k = min(batch_size, len(cand_idx))
        idx = rng.choice(cand_idx, size=k, replace=False) if k else np.empty(0, dtype=np.int64)
        # Each candidate had the same chance k/N of being in a uniform batch of k.
        prob = np.full(k, k / max(len(cand_idx), 1))
        return Selection(idx, np.zeros(k), prob, [reasons.code("random")] * k, strategy=self.name)


class _Uncertainty(Strategy):
    uses_proba = True
    measure = staticmethod(margin_uncertainty)

    def score_all(self, embeddings, proba, labelled_mask, exclude_mask=None):
        if proba is None:
            # No model yet: every sample is equally uncertain; seeded noise breaks the tie randomly.
            return self._rng(labelled_mask).random(len(labelled_mask)).astype(np.float32) * 1e-3
        if len(proba) != len(labelled_mask):
            raise ValueError("proba must have one row per sample")
        return self.measure(proba)

    def select(self, embeddings, proba, labelled_mask, batch_size, exclude_mask=None):
        if proba is None:
            # No model yet: the picks are uniform random, and are recorded as what chose them.
            sel = RandomStrategy(self.seed).select(embeddings, None, labelled_mask, batch_size, exclude_mask)
            sel.strategy = "random"
            return sel
        sel = super().select(embeddings, proba, labelled_mask, batch_size, exclude_mask)
        sel.reasons = reasons.torn(proba, sel.indices, self.name, sel.scores)
        return sel


class LeastConfidenceStrategy(_Uncertainty):
    name = "least_confidence"
    measure = staticmethod(least_confidence)


class MarginStrategy(_Uncertainty):
    name = "margin"
    measure = staticmethod(margin_uncertainty)


class EntropyStrategy(_Uncertainty):
    name = "entropy"
    measure = staticmethod(entropy_uncertainty)
