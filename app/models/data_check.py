"""Near-duplicates and outliers found on one embedding version (issue 18), and the samples an expert took
out of the pool."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class DataCheckSet(Base):
    """The duplicate groups and outliers the train job computed on one embedding version (migration 0016).

    JSON lists, written and read whole: the groups ([{sample_ids, similarity}], largest first) and the
    outliers ([{sample_id, score, reason}], most unusual first, at most a few hundred a reason)."""

    __tablename__ = "data_check_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    embedding_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("embedding_versions.id", ondelete="SET NULL"))
    samples: Mapped[int] = mapped_column(default=0)  # rows checked
    groups: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    outliers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # thresholds, seconds, counts
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SampleExclusion(Base):
    """A sample taken out of the pool (a copy of another, an odd image): the queue does not serve it.
    Deleting the row brings it back."""

    __tablename__ = "sample_exclusions"

    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(32))  # duplicate | outlier | blank | other
    note: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
