"""The one interface every query strategy follows: score every candidate, then select a batch.

A strategy never sees labels, only what the service has: the pool's embeddings, the current model's
class probabilities (``None`` before there is a model), which samples are labelled, and which must not be
offered (leased to someone else, in the audit sample, ...). Everything random draws from the strategy's own
seeded generator, so the same inputs and seed always give the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Rows are processed in blocks of this many so a 1M x 512 pool never needs a second full-size copy.
CHUNK = 65536


@dataclass
class Selection:
    """A batch of picks, best first.

    ``probabilities`` is the probability each pick had of being chosen given the inputs: 1.0 for a
    deterministic choice, k/N for a uniform draw, the draw probability for a sampled one. It is a
    property of the strategy for the benchmarks, not stored: the service's strategies are deterministic
    (all 1.0) and nothing estimated from them, so the column and the claim went (schema 0010). The
    honest accuracy estimate is the random audit sample's.
    """

    indices: np.ndarray
    scores: np.ndarray
    probabilities: np.ndarray
    reasons: list[str]
    strategy: str = ""
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.indices)

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        self.probabilities = np.asarray(self.probabilities, dtype=np.float64)
        if not (len(self.indices) == len(self.scores) == len(self.probabilities) == len(self.reasons)):
            raise ValueError("indices, scores, probabilities and reasons must have the same length")


def candidate_mask(labelled_mask: np.ndarray, exclude_mask: np.ndarray | None) -> np.ndarray:
    """Samples that may be offered: not labelled and not excluded."""
    labelled_mask = np.asarray(labelled_mask, dtype=bool)
    cand = ~labelled_mask
    if exclude_mask is not None:
        exclude_mask = np.asarray(exclude_mask, dtype=bool)
        if exclude_mask.shape != labelled_mask.shape:
            raise ValueError("exclude_mask must have the same shape as labelled_mask")
        cand &= ~exclude_mask
    return cand


def top_k(scores: np.ndarray, cand_idx: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Indices (into the pool) of the k best-scoring candidates, best first.

    A tiny seeded jitter breaks ties, so equal scores (e.g. before a model exists) are not always resolved
    in favour of the lowest index, yet the result stays deterministic for a seed.
    """
    k = min(k, len(cand_idx))
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    s = scores[cand_idx].astype(np.float64)
    s = s + rng.random(len(s)) * 1e-9 * (np.ptp(s) + 1.0)
    part = np.argpartition(-s, k - 1)[:k] if k < len(s) else np.arange(len(s))
    order = part[np.argsort(-s[part], kind="stable")]
    return cand_idx[order]


def gumbel_top_k(
    scores: np.ndarray, cand_idx: np.ndarray, k: int, temperature: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Sample k candidates without replacement with weights softmax(score / temperature).

    Returns picks (best first) and each pick's approximate inclusion probability
    1 - (1 - w_i)^k, which is exact for k = 1 and close for small k / large pools.
    """
    k = min(k, len(cand_idx))
    s = scores[cand_idx].astype(np.float64) / max(temperature, 1e-12)
    s -= s.max()
    w = np.exp(s)
    w /= w.sum()
    g = np.log(np.maximum(w, 1e-300)) + rng.gumbel(size=len(w))
    order = np.argsort(-g, kind="stable")[:k]
    prob = 1.0 - (1.0 - w[order]) ** k
    return cand_idx[order], np.clip(prob, 1e-12, 1.0)


def as_float32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Row-normalised float32 copy, so dot products are cosine similarities."""
    x = as_float32(x)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class Strategy:
    """Base class: subclasses implement :meth:`score_all`; :meth:`select` takes the top of it.

    Args:
        seed: seeds every random choice the strategy makes.
        temperature: 0 picks the top scores deterministically; > 0 samples with weights
            softmax(score / temperature), which spreads picks and makes their probabilities < 1.
    """

    name = "base"
    #: whether the strategy can use class probabilities (falls back when they are None)
    uses_proba = False

    def __init__(self, seed: int = 0, temperature: float = 0.0):
        self.seed = seed
        self.temperature = temperature

    def _rng(self, labelled_mask: np.ndarray) -> np.random.Generator:
        # Mixing the labelled count into the seed gives each round fresh randomness while staying
        # reproducible: the same pool state and seed always produce the same batch.
        return np.random.default_rng([int(self.seed), int(np.count_nonzero(labelled_mask))])

    def score_all(
        self,
        embeddings: np.ndarray,
        proba: np.ndarray | None,
        labelled_mask: np.ndarray,
        exclude_mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """Acquisition score for every sample (N,), higher means "ask sooner".

        Labelled and excluded rows get a score too (the caller filters), so it can be written in bulk.
        """
        raise NotImplementedError

    def reason(self, proba: np.ndarray | None) -> str:
        return self.name

    def select(
        self,
        embeddings: np.ndarray,
        proba: np.ndarray | None,
        labelled_mask: np.ndarray,
        batch_size: int,
        exclude_mask: np.ndarray | None = None,
    ) -> Selection:
        cand_idx = np.flatnonzero(candidate_mask(labelled_mask, exclude_mask))
        rng = self._rng(labelled_mask)
        scores = self.score_all(embeddings, proba, labelled_mask, exclude_mask)
        if self.temperature > 0:
            idx, prob = gumbel_top_k(scores, cand_idx, batch_size, self.temperature, rng)
        else:
            idx = top_k(scores, cand_idx, batch_size, rng)
            prob = np.ones(len(idx))
        why = self.reason(proba)
        return Selection(idx, scores[idx], prob, [why] * len(idx), strategy=self.name)
