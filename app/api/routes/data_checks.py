"""Near-duplicates, outliers and the samples taken out of the pool (issue 18, items 2 and 3)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.api import errors
from app.api.deps import ProjectLabeller, ProjectMember, SessionDep
from app.services import data_checks as service
from app.services import overlap

router = APIRouter(tags=["results"])


class ExclusionIn(BaseModel):
    sample_ids: list[int] = Field(min_length=1, max_length=10_000)
    reason: str = Field(default="duplicate", max_length=32)
    note: str | None = Field(default=None, max_length=200)


class InclusionIn(BaseModel):
    sample_ids: list[int] = Field(min_length=1, max_length=10_000)


@router.get("/projects/{pid}/duplicates", responses=errors.responses(401, 404, 409))
def duplicates(session: SessionDep, access: ProjectMember,
               limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> dict:
    return service.duplicates(session, access.project, limit, overlap.blind_for(access.role, access.user.id))


@router.get("/projects/{pid}/outliers", responses=errors.responses(401, 404, 409, 422))
def outliers(session: SessionDep, access: ProjectMember, limit: Annotated[int, Query(ge=1, le=500)] = 50,
             reason: Annotated[str | None, Query(max_length=32)] = None) -> dict:
    return service.outliers(session, access.project, limit, reason, overlap.blind_for(access.role, access.user.id))


@router.get("/projects/{pid}/exclusions", responses=errors.responses(401, 404))
def exclusions(session: SessionDep, access: ProjectMember) -> dict:
    return service.exclusions(session, access.project)


@router.post("/projects/{pid}/exclusions", responses=errors.responses(401, 403, 404, 413, 422))
def exclude(body: ExclusionIn, session: SessionDep, access: ProjectLabeller) -> dict:
    """Take samples out of the pool (the queue no longer serves them): copies of another, odd images."""
    return service.exclude(session, access.project, access.user, body.sample_ids, body.reason, body.note)


@router.post("/projects/{pid}/exclusions/remove", responses=errors.responses(401, 403, 404, 413, 422))
def include(body: InclusionIn, session: SessionDep, access: ProjectLabeller) -> dict:
    """Bring excluded samples back into the pool."""
    return service.include(session, access.project, body.sample_ids)
