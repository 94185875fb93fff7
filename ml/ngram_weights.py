"""The words that drive a text model's suggestion (issue 19): per class, the word n-grams whose weight
pushes a document towards it, for a model fitted on any embedding of the documents.

Arrays in, arrays out. The model is read through what it did, not through its parameters (the estimator
may be a probe, co-training or an MLP): its centred log-probabilities over the pool, regressed on the
embedding ``Z`` (a ridge, with an intercept), give a linear map ``W`` (d x C). Each n-gram's direction in
the embedding is the regression of its TF-IDF column on ``Z``: ``B = X^T Z (Z^T Z + lam I)^-1`` (F x d).
An n-gram's weight for class c is ``(B W)[:, c]``, times its IDF so that a document's term weighs
``(1 + log tf) * weight`` as its TF-IDF value does.

For the TF-IDF + truncated SVD embedding (``ml.text_features``: ``Z = X V``, up to each row's norm)
``X^T Z (Z^T Z)^-1 = V``: B is exactly the SVD's components, and ``B W`` the n-gram weights
``components.T @ w`` of a linear model on the embedding. For another embedding it is the best linear
reading of the embedding in n-grams over the pool.

Function words ("the", "at", "of the": scikit-learn's English stop words, a bigram of two of them) and
numbers (AG News' "39" is an HTML entity's) are weighed like any n-gram but not kept: with a few hundred
labels the model leans on them too, and an expert shown "the" learns nothing about why.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

MAX_FEATURES = 100_000
TOP = 400  # n-grams kept per class: a document's words beyond them are not highlighted


def word_vectorizer(n_docs: int) -> TfidfVectorizer:
    """Word uni- and bigrams as the TF-IDF view counts them (its tokens: runs of 2+ word characters,
    lower case, accents stripped; ``textwords.words`` finds them in a document the same way)."""
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2 if n_docs >= 20 else 1,
                           max_features=MAX_FEATURES, strip_accents="unicode", lowercase=True, dtype=np.float32)


def _linear_reading(Z: np.ndarray, proba: np.ndarray, lam: float) -> np.ndarray:
    """(d, C): the ridge regression of the model's centred log-probabilities on the centred embedding."""
    L = np.log(np.clip(proba, 1e-6, 1.0)).astype(np.float64)
    L -= L.mean(axis=1, keepdims=True)
    Zc = Z - Z.mean(axis=0)
    G = Zc.T @ Zc
    G[np.diag_indices_from(G)] += lam * len(Z)
    return np.linalg.solve(G, Zc.T @ (L - L.mean(axis=0)))


def class_ngram_weights(texts: Sequence[str], Z: np.ndarray, proba: np.ndarray, top: int = TOP,
                        lam: float = 1e-4) -> list[list[tuple[str, float]]]:
    """Per class, its ``top`` n-grams of positive weight, strongest first, as (n-gram, weight * idf).

    ``texts[i]`` is the document of embedding row ``Z[i]`` and probability row ``proba[i]`` (N, C)."""
    Z = np.asarray(Z, dtype=np.float64)
    vec = word_vectorizer(len(texts))
    try:
        X = vec.fit_transform(texts)
    except ValueError:  # no word at all
        return [[] for _ in range(proba.shape[1])]
    W = _linear_reading(Z, proba, lam)
    G = Z.T @ Z
    G[np.diag_indices_from(G)] += lam * len(Z)
    B = np.linalg.solve(G, (X.T @ Z).T).T  # (F, d): each n-gram's direction in the embedding
    weights = (B @ W) * vec.idf_[:, None]  # (F, C)
    terms = vec.get_feature_names_out()
    out: list[list[tuple[str, float]]] = []
    shown = np.array([not all(w in ENGLISH_STOP_WORDS or w.isdigit() for w in t.split()) for t in terms])
    for c in range(weights.shape[1]):
        col = np.where(shown, weights[:, c], -np.inf)
        best = np.argsort(-col)[:top]
        out.append([(str(terms[j]), round(float(col[j]), 6)) for j in best if col[j] > 0])
    return out
