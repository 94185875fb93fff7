"""Strategies that look at the embedding geometry only: k-center greedy (core-set) and cold start.

Cold start follows TypiClust (Hacohen et al., "Active Learning on a Budget", ICML 2022): with too few
labels for a model to know what it does not know, ask for the most *typical* sample of each cluster not
yet covered by a label. From zero labels with a batch of B that is one pick per each of B clusters.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from .base import CHUNK, Selection, Strategy, candidate_mask, l2_normalise
from .reasons import code


def _row_norms(x: np.ndarray) -> np.ndarray:
    out = np.empty(len(x), dtype=np.float32)
    for s in range(0, len(x), CHUNK):
        out[s : s + CHUNK] = np.linalg.norm(np.asarray(x[s : s + CHUNK], dtype=np.float32), axis=1)
    return np.maximum(out, 1e-12)


def min_sq_dist(x: np.ndarray, norms: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared cosine distance (2 - 2 cos) from every row of x to its nearest centre, chunked.

    ``centres`` must already be unit rows; x is normalised on the fly so a 1M-row pool is never copied.
    """
    out = np.full(len(x), np.inf, dtype=np.float32)
    c = np.asarray(centres, dtype=np.float32)
    for s in range(0, len(x), CHUNK):
        block = np.asarray(x[s : s + CHUNK], dtype=np.float32)
        for t in range(0, len(c), 2048):
            sim = block @ c[t : t + 2048].T / norms[s : s + CHUNK, None]
            out[s : s + CHUNK] = np.minimum(out[s : s + CHUNK], 2.0 - 2.0 * sim.max(axis=1))
    return np.maximum(out, 0.0)


class KCenterGreedyStrategy(Strategy):
    """Core-set selection (Sener & Savarese, ICLR 2018): repeatedly take the candidate farthest from
    everything labelled or already picked, so the batch covers the pool with the smallest radius."""

    name = "kcenter"

    def score_all(self, embeddings, proba, labelled_mask, exclude_mask=None):
        if not np.any(labelled_mask):
            return np.ones(len(labelled_mask), dtype=np.float32)
        norms = _row_norms(embeddings)
        lab = l2_normalise(embeddings[np.flatnonzero(labelled_mask)])
        return min_sq_dist(embeddings, norms, lab)

    def select(self, embeddings, proba, labelled_mask, batch_size, exclude_mask=None):
        cand = candidate_mask(labelled_mask, exclude_mask)
        n_cand = int(cand.sum())
        k = min(batch_size, n_cand)
        rng = self._rng(labelled_mask)
        norms = _row_norms(embeddings)
        dist = self.score_all(embeddings, proba, labelled_mask, exclude_mask).astype(np.float32)
        picks, scores, probs, reasons = [], [], [], []
        if not np.any(labelled_mask) and k:
            # Nothing to be far from yet: the first centre is a uniform draw, recorded as such.
            first = int(rng.choice(np.flatnonzero(cand)))
            picks.append(first), scores.append(1.0), probs.append(1.0 / n_cand)
            reasons.append(code("random"))
            dist = min_sq_dist(embeddings, norms, l2_normalise(embeddings[[first]]))
        masked = np.where(cand, dist, -np.inf)
        masked[picks] = -np.inf
        while len(picks) < k:
            i = int(np.argmax(masked))
            picks.append(i), scores.append(float(masked[i])), probs.append(1.0)
            reasons.append(code("far", d2=float(masked[i])))
            new = min_sq_dist(embeddings, norms, l2_normalise(embeddings[[i]]))
            masked = np.where(np.isfinite(masked), np.minimum(masked, new), -np.inf)
            masked[i] = -np.inf
        return Selection(picks, scores, probs, reasons, strategy=self.name)


class ColdStartStrategy(Strategy):
    """Typical samples of k-means clusters, uncovered (and then largest) clusters first.

    Args:
        n_clusters: fixed cluster count; default ``n_labelled + batch_size`` as in TypiClust, so from zero
            labels there is exactly one pick per cluster.
        max_fit: k-means is fitted on at most this many rows (a seeded subsample) so 1M pools stay fast.
        knn: neighbours used for the typicality (inverse mean distance to the k nearest in the cluster).
        max_clusters: cap on the cluster count.
    """

    name = "cold_start"

    def __init__(self, seed=0, temperature=0.0, n_clusters=None, max_fit=20000, knn=20, max_clusters=500):
        super().__init__(seed, temperature)
        self.n_clusters = n_clusters
        self.max_fit = max_fit
        self.knn = knn
        self.max_clusters = max_clusters

    def _clusters(self, embeddings, labelled_mask, batch_size):
        """Fit k-means and assign every row; returns (assign, sq_dist_to_centre, k)."""
        n = len(embeddings)
        k = self.n_clusters or int(np.count_nonzero(labelled_mask)) + max(batch_size, 1)
        k = int(max(1, min(k, self.max_clusters, n)))
        rng = np.random.default_rng(self.seed)
        fit_idx = np.sort(rng.choice(n, size=min(n, self.max_fit), replace=False))
        xs = l2_normalise(embeddings[fit_idx])
        km = KMeans(n_clusters=k, n_init=1, random_state=self.seed, max_iter=100).fit(xs)
        centres = l2_normalise(km.cluster_centers_)
        norms = _row_norms(embeddings)
        assign = np.empty(n, dtype=np.int64)
        d2 = np.empty(n, dtype=np.float32)
        for s in range(0, n, CHUNK):
            sim = np.asarray(embeddings[s : s + CHUNK], dtype=np.float32) @ centres.T
            sim /= norms[s : s + CHUNK, None]
            assign[s : s + CHUNK] = sim.argmax(axis=1)
            d2[s : s + CHUNK] = 2.0 - 2.0 * sim.max(axis=1)
        return assign, np.maximum(d2, 0.0), k

    def _typicality(self, x: np.ndarray) -> np.ndarray:
        """TypiClust typicality: 1 / mean distance to the knn nearest other members."""
        if len(x) == 1:
            return np.ones(1)
        xn = l2_normalise(x)
        d = np.sqrt(np.maximum(2.0 - 2.0 * (xn @ xn.T), 0.0))
        kk = min(self.knn, len(x) - 1)
        nearest = np.partition(d, kk, axis=1)[:, 1 : kk + 1]  # column 0 is the point itself
        return 1.0 / (nearest.mean(axis=1) + 1e-8)

    def score_all(self, embeddings, proba, labelled_mask, exclude_mask=None, batch_size=10):
        assign, d2, k = self._clusters(embeddings, labelled_mask, batch_size)
        covered = np.bincount(assign[labelled_mask], minlength=k)
        med = np.array([np.median(d2[assign == c]) if np.any(assign == c) else 1.0 for c in range(k)])
        # Cheap per-row typicality (closeness to the centre, relative to the cluster's spread), weighted
        # so rows in clusters nobody has labelled come first.
        return (np.exp(-d2 / (med[assign] + 1e-8)) / (1.0 + covered[assign])).astype(np.float32)

    def select(self, embeddings, proba, labelled_mask, batch_size, exclude_mask=None):
        cand = candidate_mask(labelled_mask, exclude_mask)
        rng = self._rng(labelled_mask)
        assign, _, k = self._clusters(embeddings, labelled_mask, batch_size)
        sizes = np.bincount(assign, minlength=k)
        covered = np.bincount(assign[labelled_mask], minlength=k)
        # Uncovered clusters first, then the least covered relative to size, larger first within ties.
        order = np.lexsort((-sizes, covered / np.maximum(sizes, 1)))
        cap = max(200, 20000 // k)
        ranked = {}
        for c in order:
            members = np.flatnonzero((assign == c) & cand)
            if len(members) == 0:
                continue
            if len(members) > cap:
                members = np.sort(rng.choice(members, size=cap, replace=False))
            typ = self._typicality(np.asarray(embeddings[members]))
            ranked[c] = (members[np.argsort(-typ, kind="stable")], np.sort(typ)[::-1])
        picks, scores, reasons = [], [], []
        round_ = 0
        while len(picks) < min(batch_size, int(cand.sum())) and ranked:
            progressed = False
            for c in order:
                if c not in ranked or len(picks) >= batch_size:
                    continue
                members, typ = ranked[c]
                if round_ < len(members):
                    picks.append(int(members[round_])), scores.append(float(typ[round_]))
                    reasons.append(code("group", cluster=int(c), size=int(sizes[c]), labelled=int(covered[c])))
                    progressed = True
            round_ += 1
            if not progressed:
                break
        return Selection(picks, scores, np.ones(len(picks)), reasons, strategy=self.name)
