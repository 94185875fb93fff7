"""Likely label errors found after a model (issue 18), one set per run, versioned by embedding version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class LabelIssueSet(Base):
    """The ranked "possibly mislabelled" list the train job computed on one embedding version.

    One JSON list rather than a row per item: it is written and read whole (a few hundred items at
    most), and the train job replaces the project's earlier sets."""

    __tablename__ = "label_issue_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    embedding_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("embedding_versions.id", ondelete="SET NULL"))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", ondelete="SET NULL"))
    labels: Mapped[int] = mapped_column(default=0)  # labels scored (out of fold)
    # [{sample_id, label, suggested_label, score, neighbours: [{sample_id, label, similarity}]}], most
    # likely wrong first.
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # thresholds, seconds, counts
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LabelIssueDecision(Base):
    """An expert's decision on a doubted label (migration 0019): ``keep`` (the label is right: the list
    stops showing it while the sample keeps that label) or ``relabel`` (the new label is stored as an
    ordinary label revision; this row records that it came from the list)."""

    __tablename__ = "label_issue_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision: Mapped[str] = mapped_column(String(16))  # keep | relabel
    label: Mapped[str | None] = mapped_column(String(200))  # the label kept or given
    previous_label: Mapped[str | None] = mapped_column(String(200))
    suggested_label: Mapped[str | None] = mapped_column(String(200))  # the model's alternative shown
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
