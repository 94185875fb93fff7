from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Label(Base):
    """One revision of a sample's label. Rows are only ever inserted: an undo is a new row."""

    __tablename__ = "labels"
    __table_args__ = (
        Index("ix_labels_sample_created", "sample_id", "id"),
        # A labeller's newest revisions in a project (GET /projects/{pid}/labels/mine; schema 0014).
        Index("ix_labels_user_project_id", "user_id", "project_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    action: Mapped[str] = mapped_column(String(8), default="set")  # set | undo
    label: Mapped[str | None] = mapped_column(String(200))
    undoes_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id"))
    source: Mapped[str] = mapped_column(String(16), default="human")  # human | import | review
    # "primary" revisions make the current label; a "second" opinion (another annotator's label on a
    # sample that already has one) is kept beside it and never overwrites it.
    opinion: Mapped[str] = mapped_column(String(8), default="primary")
    # What the expert was shown when they chose, so a label can be judged against its suggestion.
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    suggested_label: Mapped[str | None] = mapped_column(String(200))
    suggested_confidence: Mapped[float | None] = mapped_column(Float)
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


class Review(Base):
    """A label that needs a second look: annotators disagree, or a confident model disagrees."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_project_status", "project_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), index=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))  # annotators_disagree | model_disagrees
    detail: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolution_label_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One event for a project's webhook, with its attempts (delivered by a worker task)."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | delivered | failed
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    # When its task last reached the broker (migration 0021); empty: never sent, or its send failed, and
    # a worker's sweep sends it (``workers.webhooks.send_unqueued``).
    queued_at: Mapped[datetime | None]


class LabelCount(Base):
    """A project's label counters, one row per labeller (``shard``: the user's id, 0 for imported
    labels); the project's counts are the sum of its rows (schema 0007). Kept by
    ``app/services/labels.py`` in the transaction that changes them. One row per labeller rather
    than per project, so annotators never queue behind one another's row lock."""

    __tablename__ = "label_counts"
    __table_args__ = (UniqueConstraint("project_id", "shard"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    shard: Mapped[int]
    # Primary "set" revisions, every source (first labels and corrections; not second opinions, not
    # undos): the "new labels" of the retrain trigger (schema 0010).
    set_labels: Mapped[int] = mapped_column(BigInteger)
    labelled: Mapped[int] = mapped_column(BigInteger)  # change to the number of labelled samples
    audit_labelled: Mapped[int] = mapped_column(BigInteger)  # ... and of labelled audit samples
