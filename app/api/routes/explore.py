from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from app.api import errors
from app.api.deps import Access, ProjectMember, SessionDep, SettingsDep
from app.schemas.labels import Suggestion
from app.services import explore, overlap

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


def _items(session: Session, access: Access, pairs: Sequence[tuple[int, float | None]]) -> NeighbourPage:
    out = []
    blind = overlap.blind_for(access.role, access.user.id)
    for sid, sim, s, p in explore.with_samples(session, access.project, pairs):
        out.append(NeighbourItem(
            sample_id=sid, similarity=sim, status=s.status, label=None if overlap.hides(s, blind) else s.label,
            suggestion=Suggestion(label=p.label, confidence=p.confidence or 0.0) if p and p.label else None,
            thumbnail_url=f"/api/v1/samples/{sid}/thumbnail", image_url=f"/api/v1/samples/{sid}/image"))
    return NeighbourPage(items=out)


@router.get("/projects/{pid}/neighbours", responses=errors.responses(401, 404, 422))
def neighbours(access: ProjectMember, session: SessionDep, settings: SettingsDep,
               sample_id: Annotated[list[int], Query(min_length=1, max_length=MAX_QUERY_SAMPLES)],
               limit: Annotated[int, Query(ge=1, le=500)] = 48,
               unlabelled: bool = True) -> NeighbourPage:
    """Samples closest in the current embedding space (cosine similarity) to ``sample_id``, best first.
    Repeat ``sample_id`` (up to 50) for the neighbourhood of a cluster: each sample scores its best
    similarity to any of them, the cluster itself left out."""
    project = access.project
    return _items(session, access, explore.neighbours(session, settings, project, sample_id, limit, unlabelled))


@router.get("/projects/{pid}/unexplored", responses=errors.responses(401, 404, 422))
def unexplored(access: ProjectMember, session: SessionDep,
               limit: Annotated[int, Query(ge=1, le=500)] = 48) -> NeighbourPage:
    """Typical samples of embedding groups nobody has labelled yet: to find a first example of a class
    that never comes up (the model cannot suggest a class it has never been shown)."""
    return _items(session, access, [(sid, None) for sid in explore.unexplored(session, access.project, limit)])


@router.get("/projects/{pid}/suggestions", responses=errors.responses(401, 404, 422))
def suggestions(access: ProjectMember, session: SessionDep,
                label: Annotated[str, Query(min_length=1, max_length=200)],
                limit: Annotated[int, Query(ge=1, le=500)] = 48,
                min_confidence: Annotated[float, Query(ge=0, le=1)] = 0.0) -> NeighbourPage:
    """Unlabelled samples the current model suggests as ``label``, most confident first."""
    ids = explore.suggested(session, access.project, label, limit, min_confidence)
    return _items(session, access, [(sid, None) for sid in ids])
