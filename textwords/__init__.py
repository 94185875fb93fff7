"""A document's words as the TF-IDF view counts them, shared by the API and ``ml``.

The API's explanation of a suggestion (``app/services/explanations.py``: the stored n-gram weights found
in the document) and ``ml.occlusion`` (each word dropped in turn) must split a document into the same
words, and both as the TF-IDF view does (``ml.ngram_weights.word_vectorizer``: scikit-learn's default
token pattern, lower case, accents stripped), or a highlighted word would not name the weight it shows.
The dependency rule (docs/architecture.md) lets ``app`` and ``ml`` share no code, so, as ``imaging`` is
for pixels, this package is the one home of that split: the standard library only, importable by every
side (tests/project/test_layout.py checks it imports neither).
"""

from __future__ import annotations

import re
import unicodedata

TOKEN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern, as the TF-IDF view uses


def fold(token: str) -> str:
    """``token`` in lower case with its accents stripped (scikit-learn's ``strip_accents="unicode"``)."""
    return "".join(c for c in unicodedata.normalize("NFKD", token.lower()) if not unicodedata.combining(c))


def words(document: str) -> list[tuple[str, int, int]]:
    """(folded word, start, end) of each word occurrence, in order; [start, end) in ``document``."""
    return [(fold(m.group()), m.start(), m.end()) for m in TOKEN.finditer(document)]
