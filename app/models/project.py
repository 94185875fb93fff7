from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Ordered: a class's position is its index in model outputs, so classes are only ever appended.
    classes: Mapped[list[str]] = mapped_column(JSON)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What its samples are: "image" or "text" (schema 0015), chosen at creation and never changed.
    kind: Mapped[str] = mapped_column(String(16), default="image", server_default="image")
    current_model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", use_alter=True, ondelete="SET NULL")
    )
    # The representation the queue and estimators use now. Plain ids (no foreign keys): versions are
    # never deleted while current, and a second circular constraint would buy nothing.
    current_backbone_version_id: Mapped[int | None]
    current_embedding_version_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # annotator | viewer
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
