"""Label spreading over a sparse k-nearest-neighbour graph of the embeddings.

Follows Zhou et al. ("Learning with local and global consistency", NIPS 2003) with the graph of Iscen et
al. ("Label propagation for deep semi-supervised learning", CVPR 2019): a symmetric kNN graph with cosine
similarities raised to a power, normalised as D^-1/2 W D^-1/2, and the closed form (I - alpha S) F = Y
solved by conjugate gradients. Memory is O(N k), never O(N^2), so it runs past 100k samples.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import cg
from sklearn.neighbors import NearestNeighbors

from .base import LoupeClassifier


def _unit_rows(X: np.ndarray) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def knn_graph(Xn: np.ndarray, n_neighbors: int = 10, gamma: float = 3.0) -> tuple[sp.csr_matrix, NearestNeighbors]:
    """Normalised symmetric kNN affinity S = D^-1/2 W D^-1/2 (sparse CSR) of unit rows ``Xn``."""
    n = len(Xn)
    nn = NearestNeighbors().fit(Xn)
    k = min(n_neighbors, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float32), nn
    dist, ind = nn.kneighbors(Xn, n_neighbors=k + 1)
    rows = np.repeat(np.arange(n), k + 1)
    sim = np.clip(1.0 - dist.ravel() ** 2 / 2.0, 0.0, None) ** gamma
    keep = ind.ravel() != rows  # drop self-loops; duplicates keep their edge to the twin
    W = sp.csr_matrix((sim[keep].astype(np.float32), (rows[keep], ind.ravel()[keep])), shape=(n, n))
    W = W + W.T  # symmetric: an edge exists if either end has the other among its k nearest
    d = np.asarray(W.sum(axis=1)).ravel()
    d_inv = 1.0 / np.sqrt(np.maximum(d, 1e-12))
    S = sp.diags(d_inv.astype(np.float32)) @ W @ sp.diags(d_inv.astype(np.float32))
    return S.tocsr(), nn


class LabelSpreadingKNN(LoupeClassifier):
    """Transductive label spreading; ``y == -1`` marks unlabelled rows that take part in the graph.

    ``predict_proba`` on the training rows returns their spread distributions (labelled rows clamped to
    their label); on new rows it averages the distributions of their nearest training rows.

    Args:
        n_neighbors: k of the kNN graph.
        alpha: how far labels spread (0 keeps only the labels, close to 1 trusts the graph).
        gamma: power on cosine similarity; larger keeps only very close neighbours' weight.
        max_iter, tol: conjugate-gradient limits.
        n_classes: the full class count; None takes the labels seen.
    """

    semi_supervised = True

    def __init__(self, n_neighbors=10, alpha=0.99, gamma=3.0, max_iter=200, tol=1e-6, n_classes=None):
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.gamma = gamma
        self.max_iter = max_iter
        self.tol = tol
        self.n_classes = n_classes

    def fit(self, X, y):
        X, codes, labelled = self._validate_fit(X, y)
        Xn = _unit_rows(X)
        self.graph_, self.nn_ = knn_graph(Xn, self.n_neighbors, self.gamma)
        n, c = len(X), len(self.classes_)
        counts = np.bincount(codes[labelled], minlength=c)
        # Each class's seed mass sums to one, so a class with many labels does not drown a rare one.
        Y = np.zeros((n, c))
        Y[np.flatnonzero(labelled), codes[labelled]] = 1.0 / counts[codes[labelled]]
        A = sp.identity(n, format="csr") - self.alpha * self.graph_
        F = np.zeros_like(Y)
        iters = [0]

        def count(_):
            iters[0] += 1

        for j in np.flatnonzero(counts):
            F[:, j], _ = cg(A, Y[:, j], rtol=self.tol, maxiter=self.max_iter, callback=count)
        self.n_iter_ = max(1, iters[0])
        F = np.maximum(F, 0.0)
        F[labelled] = 0.0
        F[np.flatnonzero(labelled), codes[labelled]] = 1.0  # hard clamp: a human label is not up for debate
        sums = F.sum(axis=1, keepdims=True)
        prior = counts / counts.sum()
        # Rows the graph never reached (another component) fall back to the label frequencies.
        self.label_distributions_ = np.where(sums > 0, F / np.maximum(sums, 1e-300), prior)
        self.transduction_ = self.classes_[np.argmax(self.label_distributions_, axis=1)]
        self._fit_X = Xn
        # A fingerprint (one random projection) per training row, sorted, so predict_proba on pool rows
        # (in any order or chunking, as a worker writes predictions) is a lookup, not a kNN search.
        self._probe = np.random.default_rng(0).standard_normal(Xn.shape[1])
        fp = Xn @ self._probe
        self._fp_order = np.argsort(fp, kind="stable")
        self._fp_sorted = fp[self._fp_order]
        return self

    def _training_rows(self, Xn: np.ndarray) -> np.ndarray:
        """Index of the training row equal (to 1e-6) to each row of Xn, or -1."""
        fp = Xn @ self._probe
        pos = np.clip(np.searchsorted(self._fp_sorted, fp), 0, len(self._fp_sorted) - 1)
        match = np.full(len(Xn), -1, dtype=np.int64)
        for shift in (0, -1):  # the equal fingerprint may sit just left of the insertion point
            p = np.clip(pos + shift, 0, len(self._fp_sorted) - 1)
            j = self._fp_order[p]
            free = match < 0
            same = free & (np.abs(self._fp_sorted[p] - fp) < 1e-4)
            same[same] = np.abs(self._fit_X[j[same]] - Xn[same]).max(axis=1) < 1e-6
            match[same] = j[same]
        return match

    def predict_proba(self, X):
        X = self._validate_predict(X)
        Xn = _unit_rows(X)
        known = self._training_rows(Xn)
        P = np.empty((len(Xn), len(self.classes_)))
        P[known >= 0] = self.label_distributions_[known[known >= 0]]
        new = np.flatnonzero(known < 0)
        if len(new):
            P[new] = self._from_neighbours(Xn[new])
        return P

    def _from_neighbours(self, Xn: np.ndarray) -> np.ndarray:
        """Rows not in the training pool: similarity-weighted average of their neighbours' distributions."""
        k = min(self.n_neighbors, len(self._fit_X))
        dist, ind = self.nn_.kneighbors(Xn, n_neighbors=k)
        w = np.clip(1.0 - dist**2 / 2.0, 0.0, None) ** self.gamma + 1e-12
        exact = dist[:, 0] < 1e-6  # a training row itself: its own distribution, not its neighbours'
        w[exact] = 0.0
        w[exact, 0] = 1.0
        P = np.einsum("nk,nkc->nc", w, self.label_distributions_[ind]) / w.sum(axis=1, keepdims=True)
        return P / P.sum(axis=1, keepdims=True)
