"""The versions a project has been through: backbones (pretrained or fine-tuned), embeddings and models,
newest first, each with its parameters, metrics and timings, and which one is current."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import select

from app.api.deps import ProjectMember, SessionDep
from app.models import BackboneVersion, EmbeddingVersion, ModelVersion

router = APIRouter(tags=["results"])


def _rows(session, model, pid: int, limit: int, current: int | None, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = session.scalars(select(model).where(model.project_id == pid).order_by(model.id.desc()).limit(limit))
    return [{"id": r.id, "job_id": r.job_id, "current": r.id == current, "created_at": r.created_at.isoformat(),
             **{f: getattr(r, f) for f in fields}} for r in rows]


@router.get("/projects/{pid}/versions")
def versions(session: SessionDep, access: ProjectMember, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict:
    project, pid = access.project, access.project.id
    return {
        "backbones": _rows(session, BackboneVersion, pid, limit, project.current_backbone_version_id,
                           ("method", "backbone", "params", "metrics")),
        "embeddings": _rows(session, EmbeddingVersion, pid, limit, project.current_embedding_version_id,
                            ("backbone_version_id", "kind", "layer", "dim", "count", "metrics")),
        "models": _rows(session, ModelVersion, pid, limit, project.current_model_version_id,
                        ("estimator", "strategy", "label_count", "embedding_version_id", "params", "metrics")),
    }
