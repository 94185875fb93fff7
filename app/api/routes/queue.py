from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api import errors
from app.api.deps import (
    BearerToken,
    ProjectLabeller,
    SessionDep,
    SettingsDep,
    finish,
    project_access,
    recycle_connection,
)
from app.models import Project
from app.schemas.labels import QueueItem, QueueOut, Suggestion
from app.services import queue as queue_service
from app.services import reasons, texts
from app.settings import Settings

router = APIRouter(tags=["queue"])


@router.post("/projects/{pid}/queue/lease", response_model=QueueOut, responses=errors.responses(401, 403, 404))
async def lease_queue(
    pid: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: BearerToken,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    x_loupe_client: Annotated[str, Header(max_length=64)] = "",
) -> Response:
    """Leases up to ``limit`` samples to the caller, best first, none leased to anyone else; what the
    caller already holds comes first and its leases are renewed. The ``X-Loupe-Client`` header names the
    caller's client (the web app sends one id per tab): a lease is held by one client of a user, so two
    tabs are served different samples. A POST (with the CSRF header when signed in by cookie): a page
    on another site cannot lease samples in the annotator's name."""
    # Called once per page by every annotator: the token's check, the work and its commit in one trip
    # to the thread pool.
    return recycle_connection(request, await run_in_threadpool(_answer, pid, session, settings, token, limit,
                                                                    x_loupe_client, True))


@router.get("/projects/{pid}/queue", response_model=QueueOut, responses=errors.responses(401, 403, 404))
async def held_queue(
    pid: int,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: BearerToken,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    x_loupe_client: Annotated[str, Header(max_length=64)] = "",
) -> Response:
    """What the caller's client holds now (unlabelled, lease not expired), leasing and renewing
    nothing. To be served samples, ``POST /projects/{pid}/queue/lease``."""
    return recycle_connection(request, await run_in_threadpool(_answer, pid, session, settings, token, limit,
                                                                    x_loupe_client, False))


def _answer(pid: int, session: Session, settings: Settings, token: str, limit: int, client: str,
            lease: bool) -> Response:
    user, project, _ = project_access(session, token, pid, "label")
    entries = (queue_service.take(session, project, user, limit, settings.default_lease_seconds, client) if lease
               else queue_service.held(session, project, user, limit, client))
    out = _page(project, entries, texts.queue_heads(session, project, [e.sample.id for e in entries]))
    finish(session)  # the leases are committed before the answer is sent, as SessionDep would
    # Built from validated models already: serialised once, not validated again against QueueOut.
    return Response(out.model_dump_json(), media_type="application/json")


def _why(e: queue_service.QueueEntry, classes: list[str]) -> tuple[str | None, str | None]:
    if e.sample.second:
        return reasons.SECOND
    if e.sample.is_audit:
        return reasons.AUDIT
    p = e.prediction
    return reasons.explain(p.reason if p else None, classes, e.strategy,
                           (p.label, p.confidence or 0.0) if p and p.label else None)


def _page(project: Project, entries: list[queue_service.QueueEntry], heads: dict[int, str] | None = None) -> QueueOut:
    heads = heads or {}
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
            is_audit=e.sample.is_audit, second_opinion=e.sample.second,
            lease_expires_at=e.lease_expires_at,
            text=heads.get(e.sample.id),
        )
        for e in entries
        for why in (_why(e, project.classes),)
    ]
    return QueueOut(items=items)


@router.post("/projects/{pid}/queue/release", responses=errors.responses(400, 401, 403, 404))
def release(
    sample_ids: Annotated[list[Annotated[int, Query(ge=1, le=2**62)]], Body(embed=True, max_length=1000)],
    session: SessionDep,
    access: ProjectLabeller,
) -> dict[str, int]:
    """Gives leased samples back to the queue (skip)."""
    return {"released": queue_service.release(session, access.project, access.user, sample_ids)}
