"""The default strategy: typical cluster samples while labels are few, then uncertainty within diversity.

After the cold start it follows "Diverse mini-batch active learning" (Zhdanov, 2019): keep the
``prefilter * batch_size`` most uncertain candidates, cluster them into ``batch_size`` groups with
uncertainty-weighted k-means, and take the sample nearest each centre, so one batch does not spend many
labels on the same confusing region. The pre-filter is what keeps a 1M-sample pool fast: only a few
thousand rows ever reach the (quadratic) diversity step, and they are handled in float32.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from . import reasons
from .base import Selection, Strategy, candidate_mask, l2_normalise, top_k
from .diversity import ColdStartStrategy
from .uncertainty import entropy_uncertainty, least_confidence, margin_uncertainty

MEASURES = {"margin": margin_uncertainty, "entropy": entropy_uncertainty, "least_confidence": least_confidence}


class MixedStrategy(Strategy):
    """Cold start, then uncertainty pre-filter, weighted k-means diversity, near-duplicate removal.

    Args:
        measure: uncertainty measure, one of ``margin``, ``entropy``, ``least_confidence``.
        prefilter: how many uncertain candidates per batch slot reach the diversity step.
        cold_start_labels: below this many labels the cold-start strategy picks; ``None`` means
            ``cold_start_per_class * n_classes``.
        cold_start_per_class: labels per class the cold start is trusted for. One (so from zero labels
            the first batch of C is one typical sample per cluster, then uncertainty takes over) needed the
            fewest labels on digits and MNIST; 2 and 3 were measured and lost (docs/benchmarks.md).
        duplicate_threshold: cosine similarity above which two samples count as near-duplicates; no two in
            one batch, and none of a labelled sample.
        cold_start_min: the cold start lasts at least this many labels, whatever the class count.
    """

    name = "mixed"
    uses_proba = True

    def __init__(
        self,
        seed=0,
        temperature=0.0,
        measure="margin",
        prefilter=10,
        cold_start_labels=None,
        cold_start_per_class=1,
        duplicate_threshold=0.98,
        cold_start_min=0,
    ):
        super().__init__(seed, temperature)
        self.cold_start_min = cold_start_min
        self.measure = measure
        self.prefilter = prefilter
        self.cold_start_labels = cold_start_labels
        self.cold_start_per_class = cold_start_per_class
        self.duplicate_threshold = duplicate_threshold

    def _in_cold_start(self, proba, labelled_mask) -> bool:
        if proba is None:
            return True
        limit = self.cold_start_labels
        if limit is None:
            limit = max(self.cold_start_per_class * proba.shape[1], self.cold_start_min)
        return int(np.count_nonzero(labelled_mask)) < limit

    def score_all(self, embeddings, proba, labelled_mask, exclude_mask=None):
        if self._in_cold_start(proba, labelled_mask):
            return ColdStartStrategy(self.seed).score_all(embeddings, proba, labelled_mask, exclude_mask)
        return MEASURES[self.measure](proba)

    def select(self, embeddings, proba, labelled_mask, batch_size, exclude_mask=None):
        if self._in_cold_start(proba, labelled_mask):
            # Recorded as what chose the batch: the cold start, not the uncertainty the name promises.
            return ColdStartStrategy(self.seed).select(embeddings, proba, labelled_mask, batch_size, exclude_mask)
        rng = self._rng(labelled_mask)
        u = MEASURES[self.measure](proba)
        cand_idx = np.flatnonzero(candidate_mask(labelled_mask, exclude_mask))
        k = min(batch_size, len(cand_idx))
        if k == 0:
            return Selection([], [], [], [], strategy=self.name)
        pool = top_k(u, cand_idx, max(k, self.prefilter * k), rng)  # most uncertain first
        xp = l2_normalise(embeddings[pool])
        pool, xp, n_fresh = self._drop_labelled_duplicates(embeddings, labelled_mask, pool, xp)
        # Cluster only the candidates that are not near-copies of a label, unless too few are left.
        n_fit = n_fresh if n_fresh >= k else len(pool)
        weights = np.asarray(u[pool[:n_fit]], dtype=np.float64) + 1e-6
        km = KMeans(n_clusters=k, n_init=1, random_state=int(rng.integers(2**31)), max_iter=50)
        assign = np.full(len(pool), -1)
        assign[:n_fit] = km.fit_predict(xp[:n_fit], sample_weight=weights)
        centres = l2_normalise(km.cluster_centers_)
        sim_to_centre = np.einsum("ij,ij->i", xp, centres[np.maximum(assign, 0)])
        # Within each cluster, members ordered by closeness to the centre: the first is the pick, the
        # rest are stand-ins if it turns out to duplicate a pick from another cluster.
        by_cluster = [np.flatnonzero(assign == c) for c in range(k)]
        by_cluster = [m[np.argsort(-sim_to_centre[m], kind="stable")] for m in by_cluster if len(m)]
        by_cluster.sort(key=lambda m: -float(u[pool[m].astype(np.int64)].max()))
        chosen: list[int] = []
        diverse: list[bool] = []
        for members in by_cluster:
            for j in members:
                if self._is_duplicate(xp, chosen, j):
                    continue
                chosen.append(int(j))
                diverse.append(True)
                break
        # Clusters made only of duplicates leave gaps; fill them with the most uncertain non-duplicates.
        for j in range(len(pool)):
            if len(chosen) >= k:
                break
            if j not in chosen and not self._is_duplicate(xp, chosen, j):
                chosen.append(j)
                diverse.append(False)
        order = np.argsort(-u[pool[chosen]], kind="stable")
        idx = pool[np.asarray(chosen)[order]]
        why = [r + (";diverse=1" if diverse[i] else "") for r, i in
               zip(reasons.torn(proba, idx, self.measure, u[idx]), order, strict=True)]
        return Selection(idx, u[idx], np.ones(len(idx)), why, strategy=self.name)

    def _is_duplicate(self, xp, chosen, j) -> bool:
        if not chosen:
            return False
        return bool(np.max(xp[chosen] @ xp[j]) > self.duplicate_threshold)

    def _drop_labelled_duplicates(self, embeddings, labelled_mask, pool, xp):
        """Asking for a near-copy of something already labelled wastes a label; drop those candidates."""
        lab = np.flatnonzero(labelled_mask)
        if len(lab) == 0:
            return pool, xp, len(pool)
        keep = np.ones(len(pool), dtype=bool)
        for s in range(0, len(lab), 4096):
            xl = l2_normalise(embeddings[lab[s : s + 4096]])
            keep &= (xp @ xl.T).max(axis=1) <= self.duplicate_threshold
        # Near-copies of labels go last rather than away: a short pool should still fill its batch.
        order = np.concatenate([np.flatnonzero(keep), np.flatnonzero(~keep)])
        return pool[order], xp[order], int(keep.sum())


class TypicalFirstStrategy(MixedStrategy):
    """The default of a text project: ``mixed`` with a long cold start, typical samples of the clusters no
    label covers yet (TypiClust) until 5 labels per class and at least 100, then margin within diversity.

    On TF-IDF text embeddings uncertainty from few labels loses to random picks (AG News at 100 labels
    from zero), and typical picks win up to a few labels per class (BANKING77, 77 classes, up to 500):
    docs/benchmarks.md, "Text: label efficiency".
    """

    name = "typical_first"

    def __init__(self, seed=0, temperature=0.0, cold_start_per_class=5, cold_start_min=100, **params):
        super().__init__(seed, temperature, cold_start_per_class=cold_start_per_class,
                         cold_start_min=cold_start_min, **params)
