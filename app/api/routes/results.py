"""What the model thinks and what the experts said: predictions, metrics and export."""

from __future__ import annotations

import tempfile
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from app.api.deps import ProjectMember, SessionDep, SettingsDep
from app.db import session_scope
from app.models import Project
from app.repos import results as results_repo
from app.repos import samples as samples_repo
from app.schemas.labels import PredictionOut, PredictionsOut
from app.services import automation, figures
from app.services import export as export_service
from app.services import reviews as review_service
from app.storage import BlobStore

router = APIRouter(tags=["results"])


@router.get("/projects/{pid}/predictions")
def predictions(
    access: ProjectMember,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    cursor: Annotated[int, Query(ge=0)] = 0,
) -> PredictionsOut:
    """The current model's suggestion and confidence for every sample, paged by sample id."""
    mv = access.project.current_model_version_id
    if mv is None:
        return PredictionsOut(model_version=None, items=[], next_cursor=None)
    rows = results_repo.predictions_page(session, mv, cursor, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return PredictionsOut(
        model_version=mv,
        items=[PredictionOut(sample_id=p.sample_id, label=p.label, confidence=p.confidence, score=p.score)
               for p in rows],
        next_cursor=str(rows[-1].sample_id) if more else None,
    )


@router.get("/projects/{pid}/metrics")
def metrics(access: ProjectMember, session: SessionDep) -> dict:
    """Counts, class balance, the learning curve (audit accuracy per model version vs labels), the
    confusion on the audit set, and how many labels the target accuracy still needs."""
    project = access.project
    pid = project.id
    total, labelled = samples_repo.counts(session, [pid]).get(pid, (0, 0))
    versions = results_repo.model_versions(session, pid)
    current = next((v for v in versions if v.id == project.current_model_version_id), None)
    cur = (current.metrics or {}) if current else {}
    until = automation.labels_until_retrain(session, project)
    balance = figures.class_balance(session, project)
    return {
        "sample_count": total,
        "labelled_count": labelled,
        "human_label_count": automation.human_label_count(session, pid),
        "class_balance": balance,
        "classes_needing_labels": figures.classes_needing_labels(project, balance, cur),
        "model_version": project.current_model_version_id,
        "model_number": current.number if current else None,
        "estimator": current.estimator if current else None,
        "strategy": current.strategy if current else None,
        "accuracy_estimate": cur.get("accuracy_estimate"),
        "accuracy_ci": [cur.get("ci_low"), cur.get("ci_high")] if "ci_low" in cur else None,
        "audit_label_count": cur.get("audit_labels", 0),
        "confusion": {"classes": project.classes, "matrix": cur["confusion"]} if "confusion" in cur else None,
        "labels_to_target": figures.target(project, cur, total - labelled),
        "labels_until_retrain": until,
        "retrain": figures.retrain(session, project, until),
        "agreement": review_service.agreement(session, pid),
        "learning_curve": [
            {
                "model_version": v.id,
                "number": v.number,
                "labels": v.label_count,
                "accuracy": (v.metrics or {}).get("accuracy_estimate"),
                "ci_low": (v.metrics or {}).get("ci_low"),
                "ci_high": (v.metrics or {}).get("ci_high"),
                "created_at": v.created_at.isoformat(),
            }
            for v in versions
        ],
    }


@router.get("/projects/{pid}/export")
def export(
    access: ProjectMember,
    session: SessionDep,
    settings: SettingsDep,
    format: Literal["csv", "jsonl", "imagefolder"] = "csv",
) -> StreamingResponse:
    project = access.project
    pid = project.id
    name = f"{project.name}-labels"

    def rows():
        # Its own session: the request's has committed and closed before a streamed body is sent.
        with session_scope(settings.database_url) as s:
            yield from export_service.label_rows(s, s.get(Project, pid))

    if format == "csv":
        return StreamingResponse(export_service.as_csv(rows()), media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if format == "jsonl":
        return StreamingResponse(export_service.as_jsonl(rows()), media_type="application/x-ndjson",
                                 headers={"Content-Disposition": f'attachment; filename="{name}.jsonl"'})
    spool = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    export_service.as_imagefolder_zip(
        export_service.label_rows(session, project), session, BlobStore(settings.media_path), spool
    )
    spool.seek(0)

    def chunks():
        with spool:
            while block := spool.read(1 << 20):
                yield block

    return StreamingResponse(chunks(), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{name}.zip"'})
