from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, StringConstraints


class BackboneOut(BaseModel):
    id: int
    name: str
    format: str
    architecture: str | None
    embedding_dim: int
    input_size: int
    in_channels: int
    normalization: str | None
    filename: str
    sha256: str
    size: int
    source_project_id: int | None
    source_backbone_version_id: int | None
    details: dict[str, Any]
    created_at: datetime


class BackboneExportIn(BaseModel):
    name: Annotated[str | None, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)] = None
