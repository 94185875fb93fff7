"""The words that drive a text suggestion (issue 19; ml/ngram_weights.py), on real AG News documents:
a model fitted on the TF-IDF + SVD embedding, read back in word n-grams, weighs each topic's own words
(a sports document's highlighted words are sports words), and for an exact LSA embedding the mapping is
the SVD's components, as a linear model on it implies (w_ngram = components.T @ w)."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.linear_model import LogisticRegression

from app.services.explanations import terms_in
from ml.ngram_weights import class_ngram_weights, word_vectorizer
from ml.text_features import tfidf_embedding
from tests.text.test_text_import import CLASSES, ag_news
from textwords import TOKEN

SPORTS_WORDS = {"game", "games", "team", "season", "league", "cup", "coach", "win", "won", "victory", "olympic",
                "olympics", "athens", "championship", "final", "sox", "red sox", "yankees", "match", "play",
                "players", "player", "football", "soccer", "baseball", "nfl", "nba", "golf", "tennis", "open",
                "round", "points", "scored", "quarterback", "night", "first", "medal", "gold", "world cup", "series",
                "cowboys", "tournament", "tour", "injury", "manager", "sports", "cricket", "champions", "race",
                "speedway", "field", "shot", "park", "newcastle", "chelsea", "dolphins",
                "touchdowns", "seed", "pitcher", "inning", "innings", "score", "defeat", "beat", "title"}


def test_a_sports_document_highlights_sports_words():
    rows = ag_news(600)
    texts = [r["text"] for r in rows]
    y = np.array([CLASSES.index(r["label"]) for r in rows])
    Z = tfidf_embedding(texts, dim=128)
    model = LogisticRegression(C=10, max_iter=300).fit(Z[:300], y[:300])
    weights = class_ngram_weights(texts, Z, model.predict_proba(Z))
    sports = dict(weights[CLASSES.index("Sports")])
    top = [t for t, _ in weights[CLASSES.index("Sports")][:30]]
    assert len(set(top) & SPORTS_WORDS) >= 6, top
    # Each class's strongest words are its own: few of Sports' top 30 are among World's or Business's.
    for other in ("World", "Business"):
        assert len(set(top) & {t for t, _ in weights[CLASSES.index(other)][:30]}) <= 3, other
    # Held-out sports documents the model calls Sports: their marked words are mostly sports words.
    hits, shown = 0, 0
    for i in range(300, 600):
        if y[i] != 1 or model.predict(Z[i:i + 1])[0] != 1:
            continue
        marked = [t.term for t in terms_in(texts[i], sports, limit=3)]
        shown += bool(marked)
        hits += any(w in SPORTS_WORDS for m in marked for w in (m, *m.split()))
        for t in terms_in(texts[i], sports):
            assert all(" ".join(TOKEN.findall(texts[i][s:e].lower())) == t.term for s, e in t.spans), t
    assert shown >= 30 and hits / shown >= 0.8, (hits, shown)


def test_for_an_exact_lsa_the_mapping_is_the_components():
    """Z = X V (the rows of X in its top singular directions, not normalised): the n-gram weights are
    components.T @ w, exactly, for a linear reading w of the model."""
    texts = [r["text"] for r in ag_news(200)]
    X = word_vectorizer(len(texts)).fit_transform(texts)
    _u, _s, vt = np.linalg.svd(X.toarray(), full_matrices=False)
    V = vt[:40].T  # (F, 40)
    Z = X @ V
    w = np.random.default_rng(0).standard_normal((40, 2))
    logits = Z @ w
    proba = np.exp(logits - logits.max(1, keepdims=True))
    proba /= proba.sum(1, keepdims=True)
    got = class_ngram_weights(texts, Z, proba, top=50, lam=1e-9)
    vec = word_vectorizer(len(texts)).fit(texts)
    terms = vec.get_feature_names_out()
    centred = w - w.mean(axis=1, keepdims=True)  # log-probabilities are known up to a per-row shift
    want = (V @ centred) * vec.idf_[:, None]
    shown = np.array([not all(w in ENGLISH_STOP_WORDS or w.isdigit() for w in t.split()) for t in terms])
    want[~shown] = -np.inf  # function words and numbers are weighed but never shown
    for c in range(2):
        best = [str(terms[j]) for j in np.argsort(-want[:, c])[:20]]
        assert [t for t, _ in got[c][:20]] == best
