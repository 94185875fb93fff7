"""The text view that costs nothing to learn (issue 19): TF-IDF of word and character n-grams,
reduced to a dense embedding by truncated SVD (latent semantic analysis).

Arrays in, arrays out: a list of documents in, an (N, D) float32 array out, rows L2-normalised so a dot
product is a cosine similarity (the strategies' kNN graphs and clusters read it as they read an image
embedding). The vocabulary and the SVD are fitted on the whole pool each time (the pool is the corpus:
no labels, nothing downloaded), so adding documents re-embeds every one of them.

* word uni- and bigrams (``sublinear_tf``: 1 + log tf) and character 2-5-grams within word bounds
  (``char_wb``: spelling variants, inflections and typos share n-grams), each block L2-normalised then
  both weighed 1/sqrt(2), so the sum of the two cosines is what the concatenation measures;
* ``sparse_features`` is that matrix (for a linear model on n-grams: the benchmark's baseline);
* ``tfidf_embedding`` reduces it to ``dim`` components (256 by default, fewer for a small pool) by a
  randomized SVD (``lsa``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

DIM = 256
MAX_WORD_FEATURES = 200_000
MAX_CHAR_FEATURES = 200_000

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class TextView:
    words: tuple[int, int] = (1, 2)
    chars: tuple[int, int] = (2, 5)
    min_df: int = 2  # an n-gram of one document says nothing about any other (kept for tiny pools)
    use_chars: bool = True
    use_words: bool = True  # off with use_chars on: the character view alone (co-training's second view)


def sparse_features(texts: Sequence[str], view: TextView = TextView()) -> sp.csr_matrix:
    """(N, F) TF-IDF of word (and character) n-grams, fitted on ``texts``; rows L2-normalised."""
    min_df = view.min_df if len(texts) >= 20 else 1
    blocks = []
    if view.use_words or not view.use_chars:
        word = TfidfVectorizer(ngram_range=view.words, sublinear_tf=True, min_df=min_df,
                               max_features=MAX_WORD_FEATURES, strip_accents="unicode", lowercase=True,
                               dtype=np.float32)
        blocks.append(_fit(word, texts))
    if view.use_chars:
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=view.chars, sublinear_tf=True, min_df=min_df,
                               max_features=MAX_CHAR_FEATURES, lowercase=True, dtype=np.float32)
        blocks.append(_fit(char, texts))
    X = sp.hstack([normalize(b) for b in blocks], format="csr", dtype=np.float32)
    return normalize(X) if len(blocks) > 1 else X


def _fit(vectorizer: TfidfVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    try:
        return vectorizer.fit_transform(texts)
    except ValueError:  # no n-gram at all (documents of punctuation alone): one empty column
        return sp.csr_matrix((len(texts), 1), dtype=np.float32)


def lsa(X: sp.csr_matrix, k: int, n_iter: int = 3, seed: int = 0) -> np.ndarray:
    """(N, k) float32: the rows of ``X`` in its first ``k`` singular directions, U_k S_k (randomized SVD,
    Halko, Martinsson & Tropp 2011, with ``n_iter`` power iterations).

    The orthonormalisations are on the documents' side only (N x k), and the small eigenproblem of
    Q^T X X^T Q gives the rotation and the singular values: scikit-learn's TruncatedSVD orthonormalises
    on the features' side (F x k, F ten times N with character n-grams) and took 8 times as long on
    3,000 AG News documents. Its singular values are within 4 % of TruncatedSVD's (5 iterations) at
    the 256th component and equal at the first."""
    rng = np.random.default_rng(seed)
    width = min(k + 10, X.shape[0])
    Q, _ = np.linalg.qr(X @ rng.standard_normal((X.shape[1], width), dtype=np.float32))
    for _ in range(n_iter):
        Q, _ = np.linalg.qr(X @ (X.T @ Q))
    C = X.T @ Q
    w, W = np.linalg.eigh(C.T @ C)
    top = np.argsort(w)[::-1][:k]
    return (Q @ (W[:, top] * np.sqrt(np.maximum(w[top], 0)))).astype(np.float32)


def tfidf_embedding(texts: Sequence[str], dim: int = DIM, seed: int = 0, view: TextView = TextView(),
                    progress: Progress | None = None) -> np.ndarray:
    """(N, d) float32, L2-normalised: the TF-IDF matrix's first ``d`` singular directions (``d`` = ``dim``,
    or fewer when the pool or the vocabulary is smaller). Not centred (latent semantic analysis): with
    non-negative TF-IDF the mean direction is the first component."""
    report = progress or (lambda f, msg: None)
    if len(texts) == 0:
        return np.zeros((0, 0), np.float32)
    report(0.0, f"counting word and character n-grams of {len(texts)} documents")
    X = sparse_features(texts, view)
    report(0.5, f"reducing {X.shape[1]} n-gram features to {dim} dimensions")
    d = min(dim, X.shape[0] - 1, X.shape[1] - 1)
    Z = X.toarray()[:, :dim] if d < 1 else lsa(X, d, seed=seed)  # one document or one feature: the matrix
    Z = np.asarray(Z, dtype=np.float32)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True) + 1e-8
    report(1.0, "done")
    return Z
