"""Other tails after the text cold start, for the benchmarks only (issue 19, BANKING77's labels-to-95 % floor).

``TypicalFirstThen`` is the default text strategy (``typical_first``: TypiClust picks until 5 labels a class
and at least 100) with another rule once the cold start is over, chosen by ``after``:

* ``badge``: BADGE (Ash et al., ICLR 2020), k-means++ seeding over the candidates' gradient embeddings of
  a linear model's loss at its own guess, g = (p - onehot(argmax p)) (x) x. Their inner products factor,
  <g_i, g_j> = <p_i - e_i, p_j - e_j> <x_i, x_j>, so the (C x D)-wide vectors are never formed;
* ``cal``: CAL, contrastive active learning (Margatina et al., EMNLP 2021): the documents whose predicted
  distribution is farthest from those of their 10 nearest labelled documents (mean KL(p_neighbour || p)),
  top of the list; ``cal_diverse``: that score in place of the margin, within ``mixed``'s diversity step.

``bench/text_efficiency.py`` builds one for a picker ``typical_first+after=badge`` (or ``cal``,
``cal_diverse``). Measured and not better than the default tail (docs/benchmarks.md, "Eleventh session"),
so none is a registered strategy.
"""

from __future__ import annotations

import numpy as np

import ml.strategies.mixed as mixed
from ml.strategies import reasons
from ml.strategies.base import Selection, candidate_mask, l2_normalise, top_k


def contrastive_scores(embeddings, proba, labelled_mask, knn: int = 10) -> np.ndarray:
    """CAL's score of every row: mean KL(p_neighbour || p_row) over its ``knn`` nearest labelled rows (cosine);
    0 for labelled rows."""
    lab = np.flatnonzero(labelled_mask)
    out = np.zeros(len(proba), np.float32)
    if len(lab) == 0:
        return out
    xl = l2_normalise(np.asarray(embeddings[lab], dtype=np.float32))
    pl = np.clip(np.asarray(proba[lab], dtype=np.float32), 1e-8, 1.0)
    hl = (pl * np.log(pl)).sum(1)  # sum p log p of each labelled row
    kk = min(knn, len(lab))
    unl = np.flatnonzero(~np.asarray(labelled_mask, bool))
    for s in range(0, len(unl), 2048):
        rows = unl[s:s + 2048]
        sim = l2_normalise(np.asarray(embeddings[rows], dtype=np.float32)) @ xl.T
        nn = np.argpartition(-sim, kk - 1, axis=1)[:, :kk]
        logp = np.log(np.clip(np.asarray(proba[rows], dtype=np.float32), 1e-8, 1.0))
        cross = np.einsum("rkc,rc->rk", pl[nn], logp)  # sum_c p_l log p_x
        out[rows] = (hl[nn] - cross).mean(1)
    return out


def badge_picks(embeddings, proba, cand_idx: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k candidates by k-means++ seeding on their gradient embeddings (the largest first)."""
    x = l2_normalise(np.asarray(embeddings[cand_idx], dtype=np.float32))
    r = np.asarray(proba[cand_idx], dtype=np.float32).copy()
    r[np.arange(len(r)), r.argmax(1)] -= 1.0
    sq = np.einsum("ij,ij->i", r, r)  # |g|^2 (|x| = 1)
    chosen = [int(np.argmax(sq))]
    d2 = np.maximum(sq + sq[chosen[0]] - 2.0 * (r @ r[chosen[0]]) * (x @ x[chosen[0]]), 0.0)
    d2[chosen] = 0.0
    while len(chosen) < k:
        total = float(d2.sum())
        j = int(rng.choice(len(d2), p=d2 / total)) if total > 0 else int(rng.integers(len(d2)))
        chosen.append(j)
        d2 = np.minimum(d2, np.maximum(sq + sq[j] - 2.0 * (r @ r[j]) * (x @ x[j]), 0.0))
        d2[chosen] = 0.0
    return cand_idx[np.asarray(chosen)]


class TypicalFirstThen(mixed.TypicalFirstStrategy):
    """``typical_first`` with the tail ``after`` (``badge``, ``cal`` or ``cal_diverse``) past its cold start."""

    def __init__(self, seed=0, temperature=0.0, after="badge", **params):
        super().__init__(seed, temperature, **params)
        self.after = after

    def select(self, embeddings, proba, labelled_mask, batch_size, exclude_mask=None):
        if self._in_cold_start(proba, labelled_mask):
            return super().select(embeddings, proba, labelled_mask, batch_size, exclude_mask)
        if self.after == "cal_diverse":  # CAL's score through mixed's diversity step, as a measure
            u = contrastive_scores(embeddings, proba, labelled_mask)
            mixed.MEASURES["cal"] = lambda p: u
            self.measure = "cal"
            return super().select(embeddings, proba, labelled_mask, batch_size, exclude_mask)
        rng = self._rng(labelled_mask)
        cand_idx = np.flatnonzero(candidate_mask(labelled_mask, exclude_mask))
        k = min(batch_size, len(cand_idx))
        if self.after == "badge":
            u = mixed.margin_uncertainty(proba)
            idx = badge_picks(embeddings, proba, cand_idx, k, rng)
        elif self.after == "cal":
            u = contrastive_scores(embeddings, proba, labelled_mask)
            idx = top_k(u, cand_idx, k, rng)
        else:
            raise ValueError(f"unknown tail {self.after!r}")
        return Selection(idx, u[idx], np.ones(len(idx)), reasons.torn(proba, idx, "margin", u[idx]),
                         strategy=self.name)
