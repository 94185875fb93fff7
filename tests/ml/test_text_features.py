"""The text view that costs nothing to learn (ml/text_features.py): TF-IDF n-grams and their
randomized SVD against numpy's exact one."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ml.text_features import TextView, lsa, sparse_features, tfidf_embedding

DOCS = ["The striker scored twice in the final", "Shares fell as the bank cut its forecast",
        "A new chip doubles battery life", "The goalkeeper saved a penalty in the final",
        "The central bank raised interest rates", "Researchers unveil a faster quantum chip"] * 4


def test_lsa_matches_the_exact_svd():
    rng = np.random.default_rng(0)
    # A low-rank-plus-noise sparse matrix, as TF-IDF rows are.
    X = sp.csr_matrix((rng.random((60, 8)) @ rng.random((8, 300)) + 0.01 * rng.random((60, 300))).astype(np.float32))
    Z = lsa(X, 5, seed=1)
    U, S, _ = np.linalg.svd(X.toarray(), full_matrices=False)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=0), S[:5], rtol=1e-3)
    # The same subspace, column by column up to sign.
    for j in range(5):
        assert abs(abs(np.dot(Z[:, j] / S[j], U[:, j])) - 1) < 1e-3


def test_sparse_view_has_word_and_character_blocks_and_unit_rows():
    X = sparse_features(DOCS)
    words = sparse_features(DOCS, TextView(use_chars=False))
    assert X.shape[0] == len(DOCS) and X.shape[1] > words.shape[1]
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    # Character n-grams relate spellings the words alone do not: "goalkeeper" and "goal" share none as words.
    a, b, _ = sparse_features(["goalkeeper", "goal", "banking"], TextView(min_df=1)).toarray()
    assert a @ b > 0


def test_embedding_is_dense_unit_length_and_groups_topics():
    Z = tfidf_embedding(DOCS, dim=4)
    assert Z.dtype == np.float32 and Z.shape == (len(DOCS), 4)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-4)
    sim = Z @ Z.T
    # The two football sentences are nearer each other than either is to a bank sentence.
    assert sim[0, 3] > sim[0, 1] and sim[0, 3] > sim[3, 4]
    assert tfidf_embedding([]).shape == (0, 0)
