"""Which words drove a model's suggestion for one document, by occlusion (issue 19 item 4): drop each word
of the document in turn (every occurrence of it), re-embed the document without it, and measure how far the
suggested class's probability falls. The fall is measured on the log-odds, log p - log(1 - p) with 1 - p
the other classes' probabilities summed: for one document it ranks the words as the probability's own fall
does (both fall as the probability without the word does), but a confident model's probabilities sit at
1.0 in float32, where every fall in probability reads 0 and the odds still tell the words apart.

Cheap where it matters (one batch of at most ``MAX_WORDS`` + 1 short documents through the embedding and
the model) and blind to how the model is built, so it explains a non-linear encoder where
``ml.ngram_weights`` (a linear reading of the model in n-grams) only approximates.

Arrays in, arrays out: the caller hands an ``embed`` callable (documents to (N, D) rows, as the model was
fitted on) and a ``proba`` callable (rows to (N, C) probabilities).

Words are found as the TF-IDF view and ``app/services/explanations.py`` find them, by ``textwords.words``
(scikit-learn's default token pattern, runs of two or more word characters, lower case, accents stripped),
so an occluded word and an n-gram weight name the same thing; tests/ml/test_occlusion.py checks the split
against the view's own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from textwords import words

# Distinct words tried per document: the default encoder reads at most 64 word pieces (about 45 words), so a
# word past the first 64 distinct ones changes nothing it sees.
MAX_WORDS = 64
MAX_TERMS = 12


@dataclass
class Occluded:
    word: str  # lower case, accents stripped
    fall: float  # the class's log-odds with the word minus without it (> 0: the word pulls towards it)
    spans: list[tuple[int, int]] = field(default_factory=list)  # each occurrence, [start, end) in the document


def without(document: str, spans: Sequence[tuple[int, int]]) -> str:
    """``document`` with the characters of ``spans`` (sorted, disjoint) cut out."""
    parts, at = [], 0
    for start, end in spans:
        parts.append(document[at:start])
        at = end
    parts.append(document[at:])
    return "".join(parts)


def log_odds(P: np.ndarray, label: int) -> np.ndarray:
    """(N,) log p - log(the other classes' p summed), of column ``label`` of (N, C) probabilities; each side
    floored at 1e-30 (a probability that underflowed to 0 would make the odds infinite)."""
    rest = np.delete(P, label, axis=1).sum(axis=1) if P.shape[1] > 1 else 1.0 - P[:, label]
    return np.log(np.maximum(P[:, label], 1e-30)) - np.log(np.maximum(rest, 1e-30))


def occlusion(document: str, embed: Callable[[list[str]], np.ndarray], proba: Callable[[np.ndarray], np.ndarray],
              label: int, *, max_words: int = MAX_WORDS, limit: int = MAX_TERMS) -> list[Occluded]:
    """The document's words whose removal lowers class ``label``'s probability, the largest fall first
    (at most ``limit``; words whose removal raises it or changes nothing are left out).

    Each distinct word (its first ``max_words``, in order of first occurrence) is removed with all its
    occurrences, so a word said three times is judged as the model reads the document without it."""
    by_word: dict[str, list[tuple[int, int]]] = {}
    for w, start, end in words(document):
        if w in by_word or len(by_word) < max_words:
            by_word.setdefault(w, []).append((start, end))
    if not by_word:
        return []
    variants = [document] + [without(document, spans) for spans in by_word.values()]
    odds = log_odds(np.asarray(proba(np.asarray(embed(variants))), dtype=np.float64), label)
    falls = odds[0] - odds[1:]
    order = np.argsort(-falls, kind="stable")
    spans_of = list(by_word.items())
    return [Occluded(spans_of[i][0], float(falls[i]), spans_of[i][1]) for i in order[:limit] if falls[i] > 0]
