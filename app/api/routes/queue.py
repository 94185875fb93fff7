from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api.deps import (
    BearerToken,
    ProjectLabeller,
    SessionDep,
    SettingsDep,
    finish,
    project_access,
    recycle_connection,
    writes,
)
from app.models import Project, User
from app.schemas.labels import QueueItem, QueueOut, Suggestion
from app.services import queue as queue_service
from app.services import reasons
from app.settings import Settings

router = APIRouter(tags=["queue"])


@router.get("/projects/{pid}/queue", response_model=QueueOut)
@writes  # leases samples
async def get_queue(
    pid: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: BearerToken,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    x_loupe_client: Annotated[str, Header(max_length=64)] = "",
) -> Response:
    """Leases up to ``limit`` samples to the caller, best first, none leased to anyone else. The
    ``X-Loupe-Client`` header names the caller's client (the web app sends one id per tab): a lease
    is held by one client of a user, so two tabs are served different samples."""
    # Called once per page by every annotator: the token's check, the work and its commit in one trip
    # to the thread pool.
    return recycle_connection(request, await run_in_threadpool(_get_queue, pid, session, settings, token, limit,
                                                                    x_loupe_client))


def _get_queue(pid: int, session: Session, settings: Settings, token: str, limit: int, client: str) -> Response:
    user, project, _ = project_access(session, token, pid, "label")
    out = _lease(project, session, settings, user, limit, client)
    finish(session)  # the leases are committed before the answer is sent, as SessionDep would
    # Built from validated models already: serialised once, not validated again against QueueOut.
    return Response(out.model_dump_json(), media_type="application/json")


def _why(e: queue_service.QueueEntry, classes: list[str]) -> tuple[str | None, str | None]:
    if e.sample.is_audit:
        return reasons.AUDIT
    p = e.prediction
    return reasons.explain(p.reason if p else None, classes, e.strategy,
                           (p.label, p.confidence or 0.0) if p and p.label else None)


def _lease(project: Project, session: Session, settings: Settings, user: User, limit: int, client: str) -> QueueOut:
    entries = queue_service.take(session, project, user, limit, settings.default_lease_seconds, client)
    items = [
        QueueItem(
            sample_id=e.sample.id, filename=e.sample.filename, width=e.sample.width, height=e.sample.height,
            image_url=f"/api/v1/samples/{e.sample.id}/image", thumbnail_url=f"/api/v1/samples/{e.sample.id}/thumbnail",
            suggestion=Suggestion(label=e.prediction.label, confidence=e.prediction.confidence or 0.0)
            if e.prediction and e.prediction.label
            else None,
            score=e.prediction.score if e.prediction else None, strategy=e.strategy, model_version=e.model_version,
            model_number=e.model_number,
            reason=why[0], details=why[1],
            is_audit=e.sample.is_audit,
            lease_expires_at=e.lease_expires_at,
        )
        for e in entries
        for why in (_why(e, project.classes),)
    ]
    return QueueOut(items=items)


@router.post("/projects/{pid}/queue/release")
def release(
    sample_ids: Annotated[list[Annotated[int, Query(ge=1, le=2**62)]], Body(embed=True, max_length=1000)],
    session: SessionDep,
    access: ProjectLabeller,
) -> dict[str, int]:
    """Gives leased samples back to the queue (skip)."""
    return {"released": queue_service.release(session, access.project, access.user, sample_ids)}
