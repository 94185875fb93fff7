"""Working as a team: the review list and the per-project activity log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, StringConstraints

from app.api import errors
from app.api.deps import Access, CurrentUser, ProjectMember, SessionDep, SettingsDep, require
from app.models import Review
from app.services import activity as activity_service
from app.services import automation, overlap
from app.services import notes as notes_service
from app.services import reviews as review_service

router = APIRouter(tags=["team"])


class ReviewOut(BaseModel):
    id: int
    sample_id: int
    reason: str
    detail: dict
    status: str
    opinions: list[dict]
    comments: list[dict] = []  # the sample's comments, oldest first
    created_at: datetime


class ResolveIn(BaseModel):
    label: Annotated[str, StringConstraints(min_length=1, max_length=200)]


@router.get("/projects/{pid}/reviews", responses=errors.responses(401, 404))
def reviews(access: ProjectMember, session: SessionDep,
            status: Literal["open", "resolved", "withdrawn"] = "open",
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[ReviewOut]:
    # An annotator who may yet give a sample's second opinion does not see its first label here either.
    hidden = overlap.hidden_ids(session, access.project.id, overlap.blind_for(access.role, access.user.id))
    return [ReviewOut(id=r.id, sample_id=r.sample_id, reason=r.reason, detail=r.detail, status=r.status,
                      opinions=review_service.opinions(session, r.sample_id),
                      comments=notes_service.comments(session, r.sample_id), created_at=r.created_at)
            for r in review_service.list_reviews(session, access.project, status, limit)
            if r.sample_id not in hidden]


def _review_target(rid: int, session: SessionDep, user: CurrentUser) -> tuple[Review, Access]:
    review = review_service.get_review(session, rid)
    return review, require(session, user, review.project_id, "review", not_found=f"review {rid} not found")


@router.post("/reviews/{rid}/resolve", responses=errors.responses(400, 401, 403, 404, 413, 422))
def resolve(rid: int, body: ResolveIn, target: Annotated[tuple[Review, Access], Depends(_review_target)],
            session: SessionDep, settings: SettingsDep) -> dict:
    """An admin or project reviewer decides; the decision becomes the sample's label (a new label for the
    retrain trigger, as any correction)."""
    review, access = target
    decision = review_service.resolve(session, review, access.project, body.label, access.user)
    automation.after_labels(session, decision.project, settings.broker_url, decision.totals)
    return {"review": rid, "label_id": decision.label.id, "label": decision.label.label}


@router.get("/projects/{pid}/activity", responses=errors.responses(401, 404))
def activity(access: ProjectMember, session: SessionDep,
             limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict:
    """Who labelled how many and when, and the latest events (labels, undos, jobs)."""
    return activity_service.activity(session, access.project, limit, overlap.blind_for(access.role, access.user.id))
