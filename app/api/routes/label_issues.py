"""Likely label errors (issue 18): the labels the model doubts most, with its alternative and the evidence."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.api import errors
from app.api.deps import ProjectLabeller, ProjectMember, SessionDep
from app.services import label_issues as service
from app.services import overlap

router = APIRouter(tags=["results"])


@router.get("/projects/{pid}/label-issues", responses=errors.responses(401, 404, 409))
def label_issues(session: SessionDep, access: ProjectMember,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
    return service.label_issues(session, access.project, limit, overlap.blind_for(access.role, access.user.id))


class DecisionIn(BaseModel):
    decision: str = Field(max_length=16)  # keep | relabel
    label: str | None = Field(default=None, max_length=200)  # relabel: the new label (posted to /labels too)


@router.post("/projects/{pid}/label-issues/{sid}/decision", responses=errors.responses(401, 403, 404, 413, 422))
def decide(sid: int, body: DecisionIn, session: SessionDep, access: ProjectLabeller) -> dict:
    """Record the expert's decision on a doubted label: keep it (not listed again while it stays) or
    relabel (the new label itself goes through POST /projects/{pid}/labels)."""
    return service.decide(session, access.project, access.user, sid, body.decision, body.label)
