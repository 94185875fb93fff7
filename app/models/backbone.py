from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utcnow


class RegisteredBackbone(Base):
    """A backbone file an admin registered (or a project's backbone exported), checked in a child process
    before this row is written; the file lives in the media store under ``file_key``."""

    __tablename__ = "backbones"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    format: Mapped[str] = mapped_column(String(16))  # torchvision | torchscript | onnx
    architecture: Mapped[str | None] = mapped_column(String(64))  # torchvision.models name
    embedding_dim: Mapped[int]
    input_size: Mapped[int]
    in_channels: Mapped[int]
    # What the check reported: normalisation, block widths, parameter count, trainable.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    file_key: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Set when the file was exported from a project's backbone version.
    source_project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    source_backbone_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("backbone_versions.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
