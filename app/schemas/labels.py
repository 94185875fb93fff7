from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, Field, StringConstraints

if TYPE_CHECKING:
    from app.models import Label
    from app.repos.labels import StoredLabel


class LabelIn(BaseModel):
    sample_id: Annotated[int, Field(ge=1, le=2**62, strict=True)]  # strict: true is not sample 1
    label: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    duration_ms: Annotated[int | None, Field(ge=0, le=86_400_000)] = None


class LabelOut(BaseModel):
    id: int
    sample_id: int
    label: str | None
    action: str
    source: str
    opinion: str = "primary"
    username: str | None
    suggested_label: str | None
    suggested_confidence: float | None
    model_version: int | None
    duration_ms: int | None
    created_at: datetime


class LabelsOut(BaseModel):
    created: int
    batch_id: str | None = None
    items: list[LabelOut]


class RecentLabelOut(BaseModel):
    """One of the caller's own label revisions or unsure marks (``GET /projects/{pid}/labels/mine``)."""
    label_id: int
    sample_id: int
    label: str | None
    opinion: str
    action: str = Field(default="set", description="`set` (a label) or `unsure` (a mark, its label null)")
    live: bool = Field(description="false once undone (a mark: also once its review is decided)")
    created_at: datetime
    current_label: str | None = Field(description="the sample's label now")
    filename: str
    width: int
    height: int
    thumbnail_url: str
    image_url: str


class RecentLabelsOut(BaseModel):
    items: list[RecentLabelOut]


class Suggestion(BaseModel):
    label: str
    confidence: float


class QueueItem(BaseModel):
    sample_id: int
    filename: str
    width: int
    height: int
    image_url: str
    thumbnail_url: str
    suggestion: Suggestion | None
    score: float | None
    strategy: str
    reason: str | None = None  # why it is asked, in the expert's words
    details: str | None = None  # the technical detail behind the reason (scores, clusters)
    is_audit: bool = False
    # Served for a second opinion (the project's overlap): another annotator labelled it; their label is not shown.
    second_opinion: bool = False
    model_version: int | None
    model_number: int | None = None  # the version's number within its project ("v3"): what people see
    lease_expires_at: datetime
    # A text project's document, its first 2,000 characters (GET /samples/{sid}/text has it whole).
    text: str | None = None


class QueueOut(BaseModel):
    items: list[QueueItem]


class PredictionOut(BaseModel):
    sample_id: int
    label: str | None
    confidence: float | None
    score: float


class PredictionsOut(BaseModel):
    model_version: int | None
    items: list[PredictionOut]
    next_cursor: str | None


def label_out(row: Label | StoredLabel, users: dict[int, str]) -> LabelOut:
    """A stored revision as the API shows it; ``users`` names the labellers by id."""
    return LabelOut(
        id=row.id, sample_id=row.sample_id, label=row.label, action=row.action, source=row.source, opinion=row.opinion,
        username=users.get(row.user_id or 0), suggested_label=row.suggested_label,
        suggested_confidence=row.suggested_confidence, model_version=row.model_version_id,
        duration_ms=row.duration_ms, created_at=row.created_at,
    )
