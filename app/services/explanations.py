"""Why the model suggests a class for a document (issue 19): the words of the document that weigh
towards it, found among the n-gram weights the train job stored for the model version
(``app.explanation_store``; ``ml.ngram_weights`` computes them). A document's term weighs
``(1 + log tf) * weight``, as its TF-IDF value times the class's weight would in a linear model.

The document is split into tokens as the TF-IDF view splits it (``textwords.words``: runs of two or more
word characters, lower case, accents stripped), so every unigram and bigram can be looked up, and each occurrence's
place in the original text is kept for the label view to mark.

Once the version's embedding holds the project's text encoder, the documents the queue serves next are
explained by occlusion instead (``workers/jobs/explain_occlusion.py``: the fall of the suggestion's
log-odds when each word is dropped and the document re-embedded, scored by the model itself); the
answer's ``method`` says which. The n-gram weights stay the answer for every other document and class."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy.orm import Session

from app import explanation_store
from app.models import Prediction, Project, Sample
from app.services import texts
from app.services.errors import Invalid
from textwords import words

MAX_TERMS = 12


@dataclass
class Term:
    term: str
    weight: float
    spans: list[tuple[int, int]] = field(default_factory=list)  # [start, end) in the document


@dataclass
class Explanation:
    sample_id: int
    model_version_id: int | None
    label: str | None  # the class explained: the suggestion, or the one asked for
    terms: list[Term]  # strongest first; empty before a model or while its weights are written
    # "occlusion": each term's weight is the fall of the class's log-odds without the word.
    method: Literal["ngrams", "occlusion"] = "ngrams"


def terms_in(document: str, weights: dict[str, float], limit: int = MAX_TERMS) -> list[Term]:
    """The document's unigrams and bigrams of positive weight, strongest contribution first."""
    tokens = words(document)
    found: dict[str, Term] = {}
    counts: dict[str, int] = {}
    grams = [(t, s, e) for t, s, e in tokens] + [
        (f"{a[0]} {b[0]}", a[1], b[2]) for a, b in zip(tokens, tokens[1:], strict=False)]
    for gram, start, end in grams:
        w = weights.get(gram)
        if w is None or w <= 0:
            continue
        counts[gram] = counts.get(gram, 0) + 1
        found.setdefault(gram, Term(gram, w)).spans.append((start, end))
    for gram, term in found.items():
        term.weight = round(term.weight * (1 + math.log(counts[gram])), 6)
    return sorted(found.values(), key=lambda t: -t.weight)[:limit]


def explain(session: Session, media: Path, sample: Sample, label: str | None = None) -> Explanation:
    """The words of ``sample``'s document that drive the current model towards ``label`` (default: its
    suggestion)."""
    project = session.get(Project, sample.project_id)
    assert project is not None
    if project.kind != "text":
        raise Invalid(f"sample {sample.id} is an image: only documents are explained by their words")
    if label is not None and label not in project.classes:
        raise Invalid(f"{label!r} is not a class of the project")
    mv = project.current_model_version_id
    if mv is None:
        return Explanation(sample.id, None, label, [])
    if label is None:
        pred = session.get(Prediction, (mv, sample.id))
        label = pred.label if pred is not None else None
    if label is None:
        return Explanation(sample.id, mv, label, [])
    occluded = explanation_store.read_occlusion(media, project.id, mv, sample.id)
    if occluded is not None and occluded[0] == label and occluded[1]:  # none found: the n-grams say more
        return Explanation(sample.id, mv, label, [Term(w, fall, list(spans)) for w, fall, spans in occluded[1]],
                           method="occlusion")
    weights = explanation_store.read(media, project.id, mv)
    if weights is None:
        return Explanation(sample.id, mv, label, [])
    return Explanation(sample.id, mv, label, terms_in(texts.document(session, sample), weights.get(label, {})))
