"""The versions a project has been through: backbones (pretrained or fine-tuned), embeddings and models,
newest first, each with its parameters, metrics and timings, and which one is current."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api import errors
from app.api.deps import ProjectMember, SessionDep
from app.services import projects as project_service

router = APIRouter(tags=["results"])


@router.get("/projects/{pid}/versions", responses=errors.responses(401, 404))
def versions(session: SessionDep, access: ProjectMember, limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict:
    return project_service.versions(session, access.project, limit)
