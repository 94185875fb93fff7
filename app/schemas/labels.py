from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints


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
    """One of the caller's own label revisions (``GET /projects/{pid}/labels/mine``)."""
    label_id: int
    sample_id: int
    label: str | None
    opinion: str
    live: bool = Field(description="false once undone")
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
    model_version: int | None
    model_number: int | None = None  # the version's number within its project ("v3"): what people see
    lease_expires_at: datetime


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
