"""Notes beside the labels: an expert's comments on a sample, a project's guidelines (schema 0018).

An expert's doubt is not here: an "unsure" mark is a label revision (``Label.action == 'unsure'``), so
it has its place in the sample's history, who and when, beside the labels it holds back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class SampleComment(Base):
    """One comment on a sample, append-only."""

    __tablename__ = "sample_comments"
    __table_args__ = (Index("ix_sample_comments_sample_id", "sample_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    sample_id: Mapped[int] = mapped_column(ForeignKey("samples.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProjectGuidelines(Base):
    """A project's labelling guidelines: Markdown as the admin wrote it (rendered, safely, when read) and
    the example samples chosen per class (``{class: [sample ids]}``; a class without any gets the most
    confident labelled samples of its class when read)."""

    __tablename__ = "project_guidelines"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    markdown: Mapped[str] = mapped_column(Text)
    examples: Mapped[dict] = mapped_column(JSON, default=dict)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
