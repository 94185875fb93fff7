"""The sample browser's answers: a page of samples with the current model's view of each, and one
sample with its whole label history."""

from __future__ import annotations

from pydantic import BaseModel

from app.schemas.common import SampleOut
from app.schemas.labels import LabelOut


class SuggestionOut(BaseModel):
    label: str
    confidence: float | None


class BrowseItemOut(SampleOut):
    """A sample as the browser lists it: the current model version's suggestion (None before a model,
    or before the first label), its acquisition score, whether a review of it is open, and with
    ``similar_to`` its cosine similarity to that sample."""
    is_audit: bool
    suggestion: SuggestionOut | None
    score: float | None
    in_review: bool
    similarity: float | None = None
    # Another annotator's first label awaits the caller's second opinion (the project's overlap): the
    # label is left out (None), as the label view leaves it out, until the caller labels the sample.
    blind: bool = False
    # Why an expert took it out of the pool (`duplicate`, `outlier`, `blank`, `other`; None: in the pool).
    # The queue and the figures leave it out: a label given to it counts nowhere until it comes back.
    set_aside: str | None = None


class BrowsePage(BaseModel):
    items: list[BrowseItemOut]
    next_cursor: str | None


class SampleDetailOut(BrowseItemOut):
    """``GET /samples/{sid}``: the sample, the current model's view of it, and every label revision,
    oldest first (who, when, and what the model suggested when it was given)."""
    history: list[LabelOut]
