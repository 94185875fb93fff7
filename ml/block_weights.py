"""A learned weighted sum of backbone blocks (the ``weighted:k`` embedding layer), arrays in, arrays out.

BERT's feature table (Devlin et al. 2019, table 7) and ELMo's scalar mix (Peters et al. 2018) weight the
layers of a network whose layers share one width. A CNN's blocks do not (64, 128, 256 channels), so the sum
is taken where the widths do not matter, over the blocks' similarity kernels: with each block's pooled
output L2-normalised (what ``concat:k`` stores), scaling block i by sqrt(w_i) makes the dot product of two
embeddings sum_i w_i cos_i, a weighted sum of the blocks' cosine similarities, and a linear probe or a kNN
graph on the scaled vectors works with that combined kernel. Equal weights give ``concat:k`` exactly.

The weights are chosen on the human labels at each fit, cheaply (no probe is fitted): the candidates are
equal weights (``concat:k``), each block alone (``last`` among them), and the weights of centred
kernel-target alignment (Cortes, Mohri & Rostamizadeh, "Algorithms for learning kernels based on centered
alignment", JMLR 2012: ``align``, each block by its own alignment, and ``alignf``, the combination's
alignment maximised jointly); the candidate whose kernel has the lowest leave-one-out error of kernel ridge
classification on the labels wins (exact, from one eigendecomposition per candidate, on at most
``LOO_ROWS`` labels). ``alignf`` alone was measured on EuroSAT and put all the weight on the last block,
4.3 points below equal weights with every label (docs/benchmarks.md): hence the check. With fewer than
``MIN_LABELS`` labels (or one class) the weights stay equal (``concat:k``) and the result says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

MIN_LABELS = 20  # below this many labels (or with one class) the weights stay equal
LOO_ROWS = 500  # the weights are chosen on at most this many labels (an n x n eigendecomposition each)
RIDGE = 1.0  # the leave-one-out check's ridge: the logistic probe's C = 1 (ml/estimators/probe.py)


def is_weighted(layer: str) -> bool:
    """Whether an embedding layer choice asks for learned block weights (its vectors are concat:k's)."""
    return layer == "weighted" or layer.startswith("weighted:")


@dataclass(frozen=True)
class BlockWeights:
    """Weights summing to 1 over the blocks (column groups of widths ``blocks``), and how they came:
    ``learned`` when chosen on the labels (equal weights may be the choice), not when too few."""

    blocks: tuple[int, ...]
    weights: tuple[float, ...]
    learned: bool
    note: str

    def as_dict(self) -> dict:
        return {"blocks": list(self.blocks), "weights": [round(w, 4) for w in self.weights],
                "learned": self.learned, "note": self.note}


def equal_weights(blocks: Sequence[int], note: str) -> BlockWeights:
    k = len(blocks)
    return BlockWeights(tuple(int(b) for b in blocks), tuple([1.0 / k] * k), False, note)


def _centred_blocks(X: np.ndarray, blocks: Sequence[int]) -> list[np.ndarray]:
    edges = np.cumsum([0, *blocks])
    Z = np.asarray(X, dtype=np.float64)
    return [Z[:, a:b] - Z[:, a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def learn_block_weights(X: np.ndarray, y: np.ndarray, blocks: Sequence[int],
                        min_labels: int = MIN_LABELS) -> BlockWeights:
    """Weights of the blocks of the labelled rows ``X`` (N, sum(blocks)) with class indices ``y`` (N,).

    Candidates: equal weights (``concat:k``), each block alone, and the kernel-target alignment weights
    (joint and per block); the one whose kernel gives the lowest leave-one-out error of a kernel ridge
    classifier on the labels is kept (ties go to equal weights, listed first)."""
    blocks = [int(b) for b in blocks]
    if sum(blocks) != X.shape[1]:
        raise ValueError(f"blocks {blocks} do not add up to the {X.shape[1]} columns")
    if len(blocks) == 1:
        return equal_weights(blocks, "one block: nothing to weigh")
    classes = np.unique(y)
    if len(y) < min_labels or len(classes) < 2:
        return equal_weights(blocks, f"equal weights (concat) until {min_labels} labels of two classes or more")
    if len(y) > LOO_ROWS:  # the LOO check is cubic in the rows: a fixed sample of the labels is enough to rank
        keep = np.sort(np.random.default_rng(0).permutation(len(y))[:LOO_ROWS])
        X, y = X[keep], y[keep]
    Y = (y[:, None] == classes[None, :]).astype(np.float64)
    Z = _centred_blocks(X, blocks)
    candidates = _candidates(Z, Y - Y.mean(axis=0))
    errors = {name: _loo_error(Z, w, Y) for name, w in candidates.items()}
    best = min(errors, key=errors.__getitem__)  # the first of equal errors: equal weights come first
    note = (f"learned on {len(y)} labels: {best} (leave-one-out error "
            f"{errors[best]:.3f}; equal weights {errors['equal']:.3f})")
    return BlockWeights(tuple(blocks), tuple(float(x) for x in candidates[best]), True, note)


def _candidates(Z: list[np.ndarray], Yc: np.ndarray) -> dict[str, np.ndarray]:
    """Weight vectors worth trying: equal, each block alone, and by centred alignment (Cortes et al. 2012):
    ``align`` (each block by its own alignment with the labels) and ``alignf`` (the combination's alignment
    maximised jointly; sparse, so on its own it can drop blocks a probe would use)."""
    k = len(Z)
    out = {"equal": np.full(k, 1.0 / k)}
    out |= {f"block {i + 1} of {k} alone": np.eye(k)[i] for i in range(k)}
    a = np.array([np.sum((z.T @ Yc) ** 2) for z in Z])
    M = np.array([[np.sum((zi.T @ zj) ** 2) for zj in Z] for zi in Z])
    scale = np.trace(M) / k
    if scale <= 0 or not np.isfinite(scale):
        return out
    rho = a / np.sqrt(np.diag(M))  # alignment of each block's kernel (the labels' norm is common to all)
    if rho.sum() > 0:
        out["align"] = rho / rho.sum()
    # alignf: v* = argmin_{v >= 0} v'Mv - 2v'a, i.e. min ||L'v - L^-1 a|| with M = LL' (a small ridge keeps
    # L defined when two blocks' kernels are nearly the same); the weights are v* normalised.
    L = np.linalg.cholesky(M / scale + 1e-6 * np.eye(k))
    v, _ = nnls(L.T, np.linalg.solve(L, a / scale))
    if v.sum() > 0:
        out["alignf"] = v / v.sum()
    return out


def _loo_error(Z: list[np.ndarray], w: np.ndarray, Y: np.ndarray, ridge: float = RIDGE) -> float:
    """Leave-one-out error of kernel ridge classification (one-hot targets) with the kernel sum_i w_i K_i,
    exact from one eigendecomposition: the held-out fit of row j is y_j - (y_j - f_j) / (1 - H_jj) with
    H = K (K + ridge I)^-1. The ridge is the probe's own (C = 1 on unit vectors), not tuned per candidate:
    a block of noise acts on a kernel like a larger ridge, which a tuned ridge would undo and the probe
    cannot."""
    K = sum(wi * (z @ z.T) for wi, z in zip(w, Z, strict=True) if wi > 0)
    s, U = np.linalg.eigh(np.asarray(K))
    shrink = np.clip(s, 0.0, None) / (np.clip(s, 0.0, None) + ridge)
    Ym = Y.mean(axis=0)
    F = U @ (shrink[:, None] * (U.T @ (Y - Ym)))
    h = np.minimum((U ** 2) @ shrink, 1 - 1e-9)
    held_out = (Y - Ym) - ((Y - Ym) - F) / (1 - h)[:, None]
    return float(np.mean((held_out + Ym).argmax(axis=1) != Y.argmax(axis=1)))


def column_scale(weights: BlockWeights) -> np.ndarray:
    """Per-column factors sqrt(k w_i): 1 everywhere for equal weights, so a ``concat:k`` vector (unit
    length, each block 1/sqrt(k)) stays as it is and a weighted one stays unit length."""
    k = len(weights.blocks)
    return np.repeat(np.sqrt(k * np.asarray(weights.weights)), weights.blocks).astype(np.float32)


def apply_block_weights(X: np.ndarray, weights: BlockWeights) -> np.ndarray:
    """(N, D) float32: the rows of ``X`` with each block scaled by its weight."""
    return np.asarray(X, dtype=np.float32) * column_scale(weights)
