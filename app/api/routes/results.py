"""What the model thinks and what the experts said: predictions, metrics and export."""

from __future__ import annotations

import tempfile
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.api import errors
from app.api.deps import ProjectMember, SessionDep, SettingsDep
from app.api.downloads import attachment
from app.db import session_scope
from app.models import Project
from app.schemas.labels import PredictionOut, PredictionsOut
from app.services import export as export_service
from app.services import export_split, overlap
from app.services import results as results_service
from app.storage import BlobStore

router = APIRouter(tags=["results"])


@router.get("/projects/{pid}/predictions", responses=errors.responses(401, 404))
def predictions(
    access: ProjectMember,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    cursor: Annotated[int, Query(ge=0)] = 0,
) -> PredictionsOut:
    """The current model's suggestion and confidence for every sample, paged by sample id."""
    mv, rows, next_cursor = results_service.predictions_page(session, access.project, cursor, limit)
    return PredictionsOut(
        model_version=mv,
        items=[PredictionOut(sample_id=p.sample_id, label=p.label, confidence=p.confidence, score=p.score)
               for p in rows],
        next_cursor=next_cursor,
    )


@router.get("/projects/{pid}/metrics", responses=errors.responses(401, 404))
def metrics(access: ProjectMember, session: SessionDep) -> dict:
    """Counts, class balance, the learning curve (audit accuracy per model version vs labels), the
    confusion on the audit set, and how many labels the target accuracy still needs."""
    return results_service.metrics(session, access.project)


@router.get("/projects/{pid}/export", response_class=StreamingResponse,
            responses=errors.files("the current labels, by ``format``: CSV, JSON Lines, an ImageFolder zip, or "
                                   "COCO-style JSON (image-level classification)",
                                   "text/csv", "application/x-ndjson", "application/zip", "application/json")
            | errors.responses(401, 404, 422))
def export(
    access: ProjectMember,
    session: SessionDep,
    settings: SettingsDep,
    format: Literal["csv", "jsonl", "imagefolder", "coco"] = "csv",
    suggestions: Annotated[float | None, Query(
        ge=0.0, le=1.0, allow_inf_nan=False,
        description="also export the current model's suggestion for every unlabelled sample it is at least this "
                    "sure of (0-1), with `source` `model` and its `confidence`; the labels say `human` or `import`")] \
        = None,
    test_share: Annotated[float | None, Query(
        gt=0.0, lt=1.0, allow_inf_nan=False,
        description="also split the rows into `train` and `test` (a `split` field; `train/` and `test/` folders "
                    "in the ImageFolder zip) with about this share in `test`, each near-duplicate group on one "
                    "side; the same sample keeps its side in every export. A `Loupe-Warning` header says when "
                    "the duplicates are not known yet")] = None,
) -> StreamingResponse:
    """The labels (``source`` ``human`` or ``import``) and, with ``suggestions``, the model's confident
    suggestions (``source`` ``model``); with ``test_share``, each row's side of a train/test split
    (``app/services/export_split.py``). The COCO shape: ``app/services/export.py: as_coco``."""
    project = access.project
    pid = project.id
    name = f"{project.name}-labels"
    fields = export_service.fields_of(project, format)
    blind = overlap.blind_for(access.role, access.user.id)  # no first label awaiting the caller's opinion
    split, fields, headers = export_split.for_export(session, project, test_share, fields)

    def rows():
        # Its own session: the request's has committed and closed before a streamed body is sent. It only
        # reads, so on SQLite a long download neither waits for nor holds the write lock.
        with session_scope(settings.database_url, read_only=True) as s:
            yield from export_split.with_sides(
                export_service.label_rows(s, s.get(Project, pid), suggestions, blind=blind), split)

    if format == "csv":
        return StreamingResponse(export_service.as_csv(rows(), fields), media_type="text/csv",
                                 headers=attachment(f"{name}.csv") | headers)
    if format == "jsonl":
        return StreamingResponse(export_service.as_jsonl(rows(), fields), media_type="application/x-ndjson",
                                 headers=attachment(f"{name}.jsonl") | headers)
    if format == "coco":
        return StreamingResponse(export_service.as_coco(rows(), list(project.classes), project.name,
                                                         suggestions), media_type="application/json",
                                 headers=attachment(f"{name}.coco.json") | headers)
    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    export_service.as_imagefolder_zip(
        export_split.with_sides(export_service.label_rows(session, project, suggestions, blind=blind), split),
        session,
        BlobStore(settings.media_path), spool,
        manifest=suggestions is not None,
    )
    spool.seek(0)

    def chunks():
        with spool:
            while block := spool.read(1 << 20):
                yield block

    return StreamingResponse(chunks(), media_type="application/zip",
                             headers=attachment(f"{name}.zip") | headers)
