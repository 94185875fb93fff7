from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.api import errors
from app.api.deps import (
    BearerToken,
    CurrentUser,
    ProjectMember,
    SessionDep,
    SettingsDep,
    abort,
    finish,
    project_access,
    recycle_connection,
    require,
)
from app.api.routes.samples import VisibleSample
from app.models import Label, Project, User
from app.schemas.labels import LabelIn, LabelOut, LabelsOut, RecentLabelOut, RecentLabelsOut, label_out
from app.services import automation, idempotency
from app.services import labels as label_service
from app.services import samples as sample_service
from app.services.errors import Conflict, ServiceError
from app.settings import Settings

router = APIRouter(tags=["labels"])


@router.post("/projects/{pid}/labels", status_code=201, response_model=LabelsOut,
             responses=errors.responses(400, 401, 403, 404, 409, 413, 422))
async def post_labels(
    pid: int,
    body: Annotated[LabelIn | list[LabelIn], Body()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: BearerToken,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
    x_label_batch: Annotated[str | None, Header(max_length=8)] = None,
) -> Response:
    """Stores one label or a list of them (all or nothing). With an ``Idempotency-Key`` header a retry
    returns the first answer and stores nothing new."""
    # The hottest write of the service: the token's check, the work and the commit in one trip to the
    # thread pool.
    response = await run_in_threadpool(_post_labels, pid, body, session, settings, token, idempotency_key,
                                       x_label_batch)
    return recycle_connection(request, response)


def _post_labels(pid: int, body: LabelIn | list[LabelIn], session: Session, settings: Settings, token: str,
                 key: str | None, x_label_batch: str | None) -> JSONResponse:
    user, project, _ = project_access(session, token, pid, "label")
    items = body if isinstance(body, list) else [body]
    digest = idempotency.request_hash({"pid": pid, "items": [i.model_dump() for i in items]})
    try:
        response = _store_labels(project, items, session, settings, user, key, digest, x_label_batch)
    except (_KeyTaken, ServiceError) as exc:
        if not key:
            raise
        # Most likely a retry: its work is undone, and the first answer (if there is one) given again.
        abort(session)
        previous = idempotency.replay(session, user.id, key, digest)  # 422 if the key was used otherwise
        if previous is None and isinstance(exc, _KeyTaken):
            raise Conflict("a request with this Idempotency-Key is being processed; retry to get its answer") from None
        if previous is None:
            raise
        response = JSONResponse(previous.response, status_code=previous.status_code,
                                headers={"Idempotent-Replayed": "true"})
    finish(session)  # committed before the answer is sent, as SessionDep would
    return response


class _KeyTaken(Exception):
    pass


def _store_labels(project: Project, items: list[LabelIn], session: Session, settings: Settings, user: User,
                  key: str | None, digest: str, x_label_batch: str | None) -> JSONResponse:
    batch_id = label_service.new_batch_id() if x_label_batch in ("1", "true") else None
    added = label_service.add_labels(
        session, project, user, [label_service.LabelRequest(i.sample_id, i.label, i.duration_ms) for i in items],
        batch_id=batch_id, new_only=batch_id is not None,
    )
    automation.after_labels(session, project, settings.broker_url, added.totals)
    out = LabelsOut(created=len(added.labels), batch_id=batch_id,
                    items=[label_out(r, {user.id: user.username}) for r in added.labels])
    payload = out.model_dump(mode="json")
    # The key is claimed last, in the statement that stores the answer (no lookup first: a retry is
    # rare, a label call is not). A request that finds it taken waits for the one that took it to end.
    if key and not idempotency.remember(session, user.id, key, digest, 201, payload):
        raise _KeyTaken
    return JSONResponse(payload, status_code=201)


@router.get("/projects/{pid}/labels/mine", responses=errors.responses(401, 404, 422))
def my_recent_labels(access: ProjectMember, session: SessionDep,
                     limit: Annotated[int, Query(ge=1, le=label_service.RECENT_MAX)] = 50) -> RecentLabelsOut:
    """The caller's own newest label revisions and unsure marks (``action``) in the project, newest first;
    ``live`` is false once one is undone (a mark: or decided). The label view's "my recent labels" strip
    (its labels), and where its undo resumes after a reload (a label or a mark)."""
    rows = label_service.recent_labels(session, access.project, access.user, limit)
    return RecentLabelsOut(items=[RecentLabelOut(
        **vars(r), thumbnail_url=f"/api/v1/samples/{r.sample_id}/thumbnail",
        image_url=f"/api/v1/samples/{r.sample_id}/image") for r in rows])


def _label_target(lid: int, session: SessionDep, user: CurrentUser) -> Label:
    target = label_service.label_to_undo(session, lid)
    require(session, user, target.project_id, "label", not_found=f"label {lid} not found")
    return target


def _batch_target(batch_id: str, session: SessionDep, user: CurrentUser) -> list[tuple[Label, bool]]:
    rows = label_service.batch_to_undo(session, batch_id)
    require(session, user, rows[0][0].project_id, "label", not_found=f"label batch {batch_id} not found")
    return rows


@router.delete("/labels/{lid}", responses=errors.responses(401, 403, 404, 422))
def undo_label(target: Annotated[Label, Depends(_label_target)], session: SessionDep, user: CurrentUser) -> LabelOut:
    """Undo: appends a revision that cancels label ``lid``; the history keeps both."""
    return label_out(label_service.undo_label(session, target, user), {user.id: user.username})


@router.delete("/label-batches/{batch_id}", responses=errors.responses(401, 403, 404, 422))
def undo_batch(batch_id: str, rows: Annotated[list[tuple[Label, bool]], Depends(_batch_target)], session: SessionDep,
               user: CurrentUser) -> LabelsOut:
    """Undo every label of a batch (sent with ``X-Label-Batch: 1``) as one action."""
    undone = label_service.undo_batch(session, batch_id, rows, user)
    return LabelsOut(created=len(undone), batch_id=batch_id, items=[label_out(r, {user.id: user.username})
                                                                    for r in undone])


@router.get("/samples/{sid}/labels", responses=errors.responses(401, 404))
def sample_history(sample: VisibleSample, session: SessionDep, user: CurrentUser) -> list[LabelOut]:
    """The sample's label revisions, oldest first (an annotator who may yet give the second opinion it
    awaits sees only their own: ``GET /samples/{sid}``)."""
    rows, users = sample_service.history_for(session, sample, user)
    return [label_out(r, users) for r in rows]
