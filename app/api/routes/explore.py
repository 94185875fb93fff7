from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from app.api.deps import CurrentUser, SessionDep, SettingsDep
from app.models import Prediction, Project, Sample
from app.schemas.labels import Suggestion
from app.services import explore
from app.services import projects as project_service
from app.services.errors import Invalid, NotFound

router = APIRouter(tags=["explore"])
MAX_QUERY_SAMPLES = 50


class NeighbourItem(BaseModel):
    sample_id: int
    similarity: float | None
    status: str
    label: str | None
    suggestion: Suggestion | None
    thumbnail_url: str
    image_url: str


class NeighbourPage(BaseModel):
    items: list[NeighbourItem]


def _items(session, project: Project, pairs: list[tuple[int, float | None]]) -> NeighbourPage:
    ids = [sid for sid, _ in pairs]
    samples = {s.id: s for s in session.scalars(select(Sample).where(Sample.id.in_(ids)))} if ids else {}
    preds = {}
    if ids and project.current_model_version_id:
        preds = {p.sample_id: p for p in session.scalars(select(Prediction).where(
            Prediction.model_version_id == project.current_model_version_id, Prediction.sample_id.in_(ids)))}
    out = []
    for sid, sim in pairs:
        s, p = samples[sid], preds.get(sid)
        out.append(NeighbourItem(
            sample_id=sid, similarity=sim, status=s.status, label=s.label,
            suggestion=Suggestion(label=p.label, confidence=p.confidence or 0.0) if p and p.label else None,
            thumbnail_url=f"/api/v1/samples/{sid}/thumbnail", image_url=f"/api/v1/samples/{sid}/image"))
    return NeighbourPage(items=out)


@router.get("/projects/{pid}/neighbours")
def neighbours(pid: int, session: SessionDep, settings: SettingsDep, user: CurrentUser,
               sample_id: Annotated[list[int], Query(min_length=1, max_length=MAX_QUERY_SAMPLES)],
               limit: Annotated[int, Query(ge=1, le=500)] = 48,
               unlabelled: bool = True) -> NeighbourPage:
    """Samples closest in the current embedding space (cosine similarity) to ``sample_id``, best first.
    Repeat ``sample_id`` (up to 50) for the neighbourhood of a cluster: each sample scores its best
    similarity to any of them, the cluster itself left out."""
    project, _ = project_service.get_project_for(session, user, pid)
    if any(not 1 <= sid <= 2**62 for sid in sample_id):
        raise Invalid("sample_id must be between 1 and 2**62")
    found = set(session.scalars(select(Sample.id).where(Sample.id.in_(sample_id), Sample.project_id == pid)))
    if missing := sorted(set(sample_id) - found):
        raise NotFound(f"sample {', '.join(map(str, missing))} not found in project {pid}")
    return _items(session, project, explore.neighbours(session, settings, project, sample_id, limit, unlabelled))


@router.get("/projects/{pid}/unexplored")
def unexplored(pid: int, session: SessionDep, user: CurrentUser,
               limit: Annotated[int, Query(ge=1, le=500)] = 48) -> NeighbourPage:
    """Typical samples of embedding groups nobody has labelled yet: to find a first example of a class
    that never comes up (the model cannot suggest a class it has never been shown)."""
    project, _ = project_service.get_project_for(session, user, pid)
    return _items(session, project, [(sid, None) for sid in explore.unexplored(session, project, limit)])


@router.get("/projects/{pid}/suggestions")
def suggestions(pid: int, session: SessionDep, user: CurrentUser,
                label: Annotated[str, Query(min_length=1, max_length=200)],
                limit: Annotated[int, Query(ge=1, le=500)] = 48,
                min_confidence: Annotated[float, Query(ge=0, le=1)] = 0.0) -> NeighbourPage:
    """Unlabelled samples the current model suggests as ``label``, most confident first."""
    project, _ = project_service.get_project_for(session, user, pid)
    ids = explore.suggested(session, project, label, limit, min_confidence)
    return _items(session, project, [(sid, None) for sid in ids])
