"""Likely label errors (issue 18): the labels the model doubts most, with its alternative and the evidence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api import errors
from app.api.deps import ProjectMember, SessionDep
from app.services import label_issues as service

router = APIRouter(tags=["results"])


@router.get("/projects/{pid}/label-issues", responses=errors.responses(401, 404, 409))
def label_issues(session: SessionDep, access: ProjectMember,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
    return service.label_issues(session, access.project, limit)
