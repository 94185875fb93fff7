from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Label(Base):
    """One revision of a sample's label. Rows are only ever inserted: an undo is a new row."""

    __tablename__ = "labels"
    __table_args__ = (Index("ix_labels_sample_created", "sample_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(8), default="set")  # set | undo
    label: Mapped[str | None] = mapped_column(String(200))
    undoes_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id"))
    source: Mapped[str] = mapped_column(String(16), default="human")  # human | import | batch
    # What the expert was shown when they chose, so a label can be judged against its suggestion.
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    suggested_label: Mapped[str | None] = mapped_column(String(200))
    suggested_confidence: Mapped[float | None] = mapped_column(Float)
    selection_probability: Mapped[float | None] = mapped_column(Float)
    # Labels applied together (a neighbourhood batch) share an id, so they can be undone as one.
    batch_id: Mapped[str | None] = mapped_column(String(64), index=True)
    duration_ms: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IdempotencyRecord(Base):
    """The answer given to a request with an Idempotency-Key, replayed if the client retries."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
