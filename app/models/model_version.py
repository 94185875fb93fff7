from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class ModelVersion(Base):
    """A fitted estimator whose suggestions and scores the queue can serve."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    estimator: Mapped[str] = mapped_column(String(64))
    strategy: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    label_count: Mapped[int] = mapped_column(default=0)  # labelled samples it was fitted on
    # The project's new-label counter (label_counts.set_labels) when its labels were read: the retrain
    # trigger counts new labels since then, the same thing on both sides (schema 0010).
    label_revisions: Mapped[int | None] = mapped_column(BigInteger)
    number: Mapped[int | None]  # 1, 2, ... within its project: what the UI calls "v1" (schema 0010)
    embedding_version_id: Mapped[int | None] = mapped_column(ForeignKey("embedding_versions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Prediction(Base):
    """A model version's suggestion and acquisition score for one sample, written in bulk."""

    __tablename__ = "predictions"
    # Queue order (priority, then sample id, both descending) read straight off the index, so a page
    # of the queue reads a page of rows however large the pool.
    __table_args__ = (
        Index("ix_predictions_version_priority_sample", "model_version_id", "priority", "sample_id"),
        # The sample browser's orders by confidence and by score (schema 0014).
        Index("ix_predictions_version_confidence_sample", "model_version_id", "confidence", "sample_id"),
        Index("ix_predictions_version_score_sample", "model_version_id", "score", "sample_id"),
    )

    # Derived data, written a million rows at a time by COPY and dropped by version (the train job keeps
    # two): no foreign keys, whose per-row checks were two thirds of the COPY's time (31 s -> 11 s at 1M).
    model_version_id: Mapped[int] = mapped_column(primary_key=True)
    sample_id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str | None] = mapped_column(String(200))  # None before the first label
    confidence: Mapped[float | None] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float)
    # Queue order: the strategy's selected batch first (in its order), then everything by score.
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str | None] = mapped_column(String(200))


class BackboneVersion(Base):
    """A backbone trained by self-supervision on the project's images; its checkpoint is a file."""

    __tablename__ = "backbone_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    method: Mapped[str] = mapped_column(String(64))
    backbone: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    checkpoint_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EmbeddingVersion(Base):
    """One array file of embeddings (rows in the order of a stored sample-id file), never SQL rows."""

    __tablename__ = "embedding_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    backbone_version_id: Mapped[int | None] = mapped_column(ForeignKey("backbone_versions.id", ondelete="SET NULL"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))  # pixels | backbone
    layer: Mapped[str] = mapped_column(String(32), default="last")
    dim: Mapped[int]
    dtype: Mapped[str] = mapped_column(String(16))
    count: Mapped[int]
    file_key: Mapped[str] = mapped_column(String(300))
    ids_key: Mapped[str] = mapped_column(String(300))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
