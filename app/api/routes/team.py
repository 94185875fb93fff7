"""Working as a team: the review list and the per-project activity log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, StringConstraints
from sqlalchemy import func, select

from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.models import Job, Label, Project, User
from app.services import automation
from app.services import projects as project_service
from app.services import reviews as review_service

router = APIRouter(tags=["team"])


class ReviewOut(BaseModel):
    id: int
    sample_id: int
    reason: str
    detail: dict
    status: str
    opinions: list[dict]
    created_at: datetime


class ResolveIn(BaseModel):
    label: Annotated[str, StringConstraints(min_length=1, max_length=200)]


@router.get("/projects/{pid}/reviews")
def reviews(pid: int, session: SessionDep, user: CurrentUser,
            status: Literal["open", "resolved"] = "open",
            limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[ReviewOut]:
    project, _ = project_service.get_project_for(session, user, pid)
    out = []
    for r in review_service.list_reviews(session, project, status, limit):
        undone = select(Label.undoes_id).where(Label.sample_id == r.sample_id, Label.action == "undo",
                                               Label.undoes_id.is_not(None))
        rows = session.execute(
            select(Label, User.username).outerjoin(User, User.id == Label.user_id)
            .where(Label.sample_id == r.sample_id, Label.action == "set", Label.id.not_in(undone)).order_by(Label.id)
        ).all()
        opinions = [{"label_id": lab.id, "label": lab.label, "username": name, "opinion": lab.opinion}
                    for lab, name in rows]
        out.append(ReviewOut(id=r.id, sample_id=r.sample_id, reason=r.reason, detail=r.detail, status=r.status,
                             opinions=opinions, created_at=r.created_at))
    return out


@router.post("/reviews/{rid}/resolve")
def resolve(rid: int, body: ResolveIn, session: SessionDep, settings: SettingsDep, user: CurrentUser) -> dict:
    """An admin or project reviewer decides; the decision becomes the sample's label (a new label for the
    retrain trigger, as any correction)."""
    label = review_service.resolve(
        session, rid, body.label, user, lambda project_id, need: project_service.get_project_for(
            session, user, project_id, need))
    automation.after_labels(session, session.get(Project, label.project_id), settings.broker_url)
    return {"review": rid, "label_id": label.id, "label": label.label}


def _label_events(session, project_id: int, limit: int) -> list[dict]:
    """The newest ``limit`` label actions: a label or an undo, or a whole batch of either with its count."""
    rows = session.execute(
        select(Label.id, Label.action, Label.batch_id, Label.sample_id, Label.label, Label.created_at, User.username)
        .outerjoin(User, User.id == Label.user_id).where(Label.project_id == project_id)
        .order_by(Label.id.desc()).limit(limit * 20)).all()
    events: dict[tuple, dict] = {}
    for lid, action, batch, sid, label, at, name in rows:
        key = (action, batch) if batch else (lid,)
        if key not in events:
            if len(events) == limit:
                break
            events[key] = {"at": at.isoformat(), "user": name, "event": "undo" if action == "undo" else "label",
                           "sample_id": None if batch else sid, "label": label}
    batches = {key[1] for key in events if len(key) == 2}
    if batches:  # a batch's whole size, however much of it the window above saw
        sizes = {(b, act): n for b, act, n in session.execute(
            select(Label.batch_id, Label.action, func.count()).where(Label.batch_id.in_(batches))
            .group_by(Label.batch_id, Label.action))}
        for key, e in events.items():
            if len(key) == 2:
                e["event"], e["count"] = f"{e['event']} batch", int(sizes.get((key[1], key[0]), 0))
    return list(events.values())


@router.get("/projects/{pid}/activity")
def activity(pid: int, session: SessionDep, user: CurrentUser,
             limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict:
    """Who labelled how many and when, and the latest events (labels, undos, jobs)."""
    project, _ = project_service.get_project_for(session, user, pid)
    # A batch (teach by neighbourhood, and its undo) is one action: one undo, one event with its count.
    undo = Label.action == "undo"
    per_user = session.execute(
        select(User.username, func.count().filter(Label.action == "set"),
               func.count().filter(undo, Label.batch_id.is_(None))
               + func.count(func.distinct(Label.batch_id)).filter(undo),
               func.min(Label.created_at), func.max(Label.created_at))
        .join(User, User.id == Label.user_id).where(Label.project_id == project.id).group_by(User.username)
        .order_by(User.username)
    ).all()
    events = _label_events(session, project.id, limit)
    events += [
        {"at": j.created_at.isoformat(), "user": None, "event": f"job {j.kind} {j.state}", "job_id": j.id}
        for j in session.scalars(select(Job).where(Job.project_id == project.id).order_by(Job.id.desc()).limit(limit))
    ]
    events.sort(key=lambda e: e["at"], reverse=True)
    return {
        "annotators": [{"username": u, "labels": n, "undos": k, "first_at": a.isoformat() if a else None,
                        "last_at": b.isoformat() if b else None} for u, n, k, a, b in per_user],
        "events": events[:limit],
        "agreement": review_service.agreement(session, project.id),
    }
