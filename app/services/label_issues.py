"""Likely label errors (issue 18): the list the train job left for the current embeddings."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import Project
from app.repos import label_issues as repo
from app.services.errors import Conflict

NOT_YET = ("likely label errors have not been computed for the current embeddings yet: the train job "
           "computes them after each model (label a few samples of two classes or more, then train)")


def label_issues(session: Session, project: Project, limit: int) -> dict[str, Any]:
    """The ``limit`` labels most likely wrong, with the model's alternative and the nearest labelled
    neighbours; 409 while none has been computed on the project's current embedding version."""
    if project.current_embedding_version_id is None:
        raise Conflict(NOT_YET)
    found = repo.latest(session, project.id, project.current_embedding_version_id)
    if found is None:
        raise Conflict(NOT_YET)
    return {"items": found.items[:limit], "labels": found.labels, "model_version_id": found.model_version_id,
            "embedding_version_id": found.embedding_version_id, "computed_at": found.created_at}
