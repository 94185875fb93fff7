"""What every job reads first: the project, its settings with defaults, and its samples."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.db import session_scope
from app.models import EmbeddingVersion
from app.repos import embeddings as embeddings_repo
from app.repos import jobs as jobs_repo
from app.services.project_settings import effective_settings
from app.settings import get_settings


@dataclass
class JobContext:
    job_id: int
    project_id: int
    classes: list[str]
    settings: dict[str, Any]
    params: dict[str, Any]
    db_url: str
    media: Path
    current_backbone_version_id: int | None
    current_embedding: EmbeddingVersion | None
    extra: dict[str, Any] = field(default_factory=dict)
    kind: str = "image"  # the project's kind: "image" or "text" (issue 19)


def load_context(job_id: int) -> JobContext:
    settings = get_settings()
    with session_scope(settings.database_url) as s:
        job, project, emb = jobs_repo.with_project(s, job_id)
        return JobContext(
            job_id=job_id, project_id=project.id, classes=list(project.classes),
            settings=effective_settings(project.settings), params=dict(job.params or {}),
            db_url=settings.database_url, media=settings.media_path,
            current_backbone_version_id=project.current_backbone_version_id, current_embedding=emb,
            kind=project.kind,
        )


@dataclass
class SampleTable:
    ids: np.ndarray  # int64, ascending
    storage_keys: list[str]
    labels: list[str | None]
    is_audit: np.ndarray  # bool


def load_samples(ctx: JobContext) -> SampleTable:
    with session_scope(ctx.db_url) as s:
        rows = embeddings_repo.samples(s, ctx.project_id)
    return SampleTable(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        storage_keys=[r[1] for r in rows],
        labels=[r[2] for r in rows],
        is_audit=np.array([bool(r[3]) for r in rows], dtype=bool),
    )
