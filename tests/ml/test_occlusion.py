"""Occlusion of a document's words (ml/occlusion.py, issue 19 item 4) on real text with a model whose reason
is known: a bag of words under a linear softmax where one word decides the class."""

from __future__ import annotations

import numpy as np

from ml.ngram_weights import word_vectorizer
from ml.occlusion import occlusion, without
from textwords import fold, words

VOCAB = ["the", "striker", "scored", "goal", "minister", "vote", "match", "rates"]


def bag(docs: list[str]) -> np.ndarray:
    X = np.zeros((len(docs), len(VOCAB)))
    for i, d in enumerate(docs):
        for w, _, _ in words(d):
            if w in VOCAB:
                X[i, VOCAB.index(w)] += 1
    return X


def softmax_of(W: np.ndarray):
    def proba(X: np.ndarray) -> np.ndarray:
        z = X @ W
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    return proba


def test_the_word_that_decides_the_class_falls_most_and_keeps_every_place():
    # Sports (column 0) is "goal" above all, a little "striker" and "match"; Politics (1) is "minister".
    W = np.zeros((len(VOCAB), 2))
    W[VOCAB.index("goal"), 0], W[VOCAB.index("striker"), 0], W[VOCAB.index("match"), 0] = 3.0, 0.5, 0.2
    W[VOCAB.index("minister"), 1] = 2.0
    doc = "The striker scored a goal, then another GOAL in the match the minister watched."
    found = occlusion(doc, bag, softmax_of(W), label=0)
    assert [o.word for o in found] == ["goal", "striker", "match"]  # "minister" raises Sports when dropped
    assert [doc[a:b] for a, b in found[0].spans] == ["goal", "GOAL"]
    assert found[0].fall > found[1].fall > found[2].fall > 0
    p = softmax_of(W)(bag([doc, without(doc, found[0].spans)]))[:, 0]
    assert np.isclose(found[0].fall, np.log(p[0] / (1 - p[0])) - np.log(p[1] / (1 - p[1])))
    # Asked about Politics, the minister is the reason.
    assert [o.word for o in occlusion(doc, bag, softmax_of(W), label=1)] == ["minister"]


def test_a_confident_models_words_are_still_told_apart():
    # Probabilities of 1.0 in float32: the probability's own fall reads 0 for every word; the odds do not.
    W = np.zeros((len(VOCAB), 3))
    W[VOCAB.index("goal"), 0], W[VOCAB.index("striker"), 0] = 60.0, 40.0

    def proba(X: np.ndarray) -> np.ndarray:
        return softmax_of(W)(X).astype(np.float32)

    found = occlusion("the striker scored a goal", bag, proba, label=0)
    assert proba(bag(["the striker scored a goal", "the striker scored a"]))[:, 0].tolist() == [1.0, 1.0]
    assert [o.word for o in found] == ["goal", "striker"] and found[0].fall > found[1].fall > 0


def test_limits_and_documents_without_words():
    W = np.zeros((len(VOCAB), 2))
    W[:, 0] = np.arange(len(VOCAB)) + 1.0
    doc = "the striker scored goal minister vote match rates"
    assert len(occlusion(doc, bag, softmax_of(W), label=0, limit=3)) == 3
    # Only the first two distinct words are tried.
    assert {o.word for o in occlusion(doc, bag, softmax_of(W), label=0, max_words=2)} == {"the", "striker"}
    assert occlusion("?! 5", bag, softmax_of(W), label=0) == []


def test_words_are_the_tfidf_views_words():
    # The words occlusion drops (and the explanation service looks up) are the ones the n-gram weights name.
    doc = "Élysée: the PM's 2nd visit — naïve café-owners at 5pm, a b cd"
    view = word_vectorizer(1)
    assert [w for w, _, _ in words(doc)] == view.build_tokenizer()(view.build_preprocessor()(doc))
    assert [w for w, _, _ in words(doc)][:2] == ["elysee", "the"]
    assert all(fold(doc[s:e]) == w for w, s, e in words(doc))
