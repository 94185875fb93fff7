"""A learned weighted sum of backbone blocks (the ``weighted:k`` embedding layer), arrays in, arrays out.

BERT's feature table (Devlin et al. 2019, table 7) and ELMo's scalar mix (Peters et al. 2018) weight the
layers of a network whose layers share one width. A CNN's blocks do not (64, 128, 256 channels), so the sum
is taken where the widths do not matter, over the blocks' similarity kernels: with each block's pooled
output L2-normalised (what ``concat:k`` stores), scaling block i by sqrt(w_i) makes the dot product of two
embeddings sum_i w_i cos_i, a weighted sum of the blocks' cosine similarities, and a linear probe or a kNN
graph on the scaled vectors works with that combined kernel. Equal weights give ``concat:k`` exactly.

The weights are chosen on the human labels by centred kernel-target alignment (Cortes, Mohri &
Rostamizadeh, "Algorithms for learning kernels based on centered alignment", JMLR 2012, the ``alignf``
solution): maximise the alignment of sum_i w_i K_i with the label kernel y y^T, w >= 0. It costs a few
(d_i x d_j) products over the labelled rows, no extra fit. With fewer than ``MIN_LABELS`` labels (or one
class) the alignment is noise, so the weights stay equal (``concat:k``) and the result says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

MIN_LABELS = 20  # below this many labels (or with one class) the weights stay equal


def is_weighted(layer: str) -> bool:
    """Whether an embedding layer choice asks for learned block weights (its vectors are concat:k's)."""
    return layer == "weighted" or layer.startswith("weighted:")


@dataclass(frozen=True)
class BlockWeights:
    """Weights summing to 1 over the blocks (column groups of widths ``blocks``), and how they came."""

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

    Centred alignment in feature space: <K_i, K_j>_F = ||Z_i^T Z_j||_F^2 and <K_i, yy^T>_F = ||Z_i^T Y||_F^2
    with Z_i the centred columns of block i and Y the centred one-hot labels, so nothing N x N is formed."""
    blocks = [int(b) for b in blocks]
    if sum(blocks) != X.shape[1]:
        raise ValueError(f"blocks {blocks} do not add up to the {X.shape[1]} columns")
    if len(blocks) == 1:
        return equal_weights(blocks, "one block: nothing to weigh")
    classes = np.unique(y)
    if len(y) < min_labels or len(classes) < 2:
        return equal_weights(blocks, f"equal weights (concat) until {min_labels} labels of two classes or more")
    Y = (y[:, None] == classes[None, :]).astype(np.float64)
    Y -= Y.mean(axis=0)
    Z = _centred_blocks(X, blocks)
    a = np.array([np.sum((z.T @ Y) ** 2) for z in Z])
    M = np.array([[np.sum((zi.T @ zj) ** 2) for zj in Z] for zi in Z])
    scale = np.trace(M) / len(M)
    if scale <= 0 or not np.isfinite(scale):
        return equal_weights(blocks, "the blocks do not vary over the labelled samples: equal weights")
    # alignf: v* = argmin_{v >= 0} v'Mv - 2v'a, i.e. min ||L'v - L^-1 a|| with M = LL' (a small ridge keeps
    # L defined when two blocks' kernels are nearly the same); the weights are v* normalised.
    L = np.linalg.cholesky(M / scale + 1e-6 * np.eye(len(M)))
    v, _ = nnls(L.T, np.linalg.solve(L, a / scale))
    if v.sum() <= 0:
        return equal_weights(blocks, "no block aligns with the labels: equal weights")
    w = v / v.sum()
    return BlockWeights(tuple(blocks), tuple(float(x) for x in w), True,
                        f"learned on {len(y)} labels by kernel-target alignment")


def column_scale(weights: BlockWeights) -> np.ndarray:
    """Per-column factors sqrt(k w_i): 1 everywhere for equal weights, so a ``concat:k`` vector (unit
    length, each block 1/sqrt(k)) stays as it is and a weighted one stays unit length."""
    k = len(weights.blocks)
    return np.repeat(np.sqrt(k * np.asarray(weights.weights)), weights.blocks).astype(np.float32)


def apply_block_weights(X: np.ndarray, weights: BlockWeights) -> np.ndarray:
    """(N, D) float32: the rows of ``X`` with each block scaled by its weight."""
    return np.asarray(X, dtype=np.float32) * column_scale(weights)
