"""Likely label errors found after a model (issue 18), one set per run, versioned by embedding version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey
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
