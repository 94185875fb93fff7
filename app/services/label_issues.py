"""Likely label errors (issue 18): the list the train job left for the current embeddings."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.models import Project, User
from app.repos import label_issues as repo
from app.services import overlap
from app.services.errors import Conflict, Invalid

NOT_YET = ("likely label errors have not been computed for the current embeddings yet: the train job "
           "computes them after each model (label a few samples of two classes or more, then train)")


def label_issues(session: Session, project: Project, limit: int, blind: int | None = None) -> dict[str, Any]:
    """The ``limit`` labels most likely wrong, with the model's alternative and the nearest labelled
    neighbours; 409 while none has been computed on the project's current embedding version. ``blind``
    (``overlap.blind_for``): a first label awaiting that viewer's second opinion is not listed, nor shown
    as a neighbour."""
    if project.current_embedding_version_id is None:
        raise Conflict(NOT_YET)
    found = repo.latest(session, project.id, project.current_embedding_version_id)
    if found is None:
        raise Conflict(NOT_YET)
    # Not shown again: a label an expert kept, or one changed since the list was made (relabelled).
    kept = repo.kept(session, project.id)
    now = repo.current_labels(session, project.id, [i["sample_id"] for i in found.items])
    hidden = overlap.hidden_ids(session, project.id, blind)
    items = [i for i in found.items
             if now.get(i["sample_id"], "") == i["label"] and (i["sample_id"], i["label"]) not in kept
             and i["sample_id"] not in hidden]
    if hidden:
        items = [{**i, "neighbours": [n for n in i["neighbours"] if n["sample_id"] not in hidden]} for i in items]
    return {"items": items[:limit], "labels": found.labels, "model_version_id": found.model_version_id,
            "embedding_version_id": found.embedding_version_id, "computed_at": found.created_at}


def decide(session: Session, project: Project, user: User, sample_id: int, decision: str,
           label: str | None) -> dict[str, Any]:
    """Record an expert's decision on a doubted label: ``keep`` its current label, or ``relabel`` (the
    new label is posted as any label is; this records that the list led to it)."""
    if decision not in ("keep", "relabel"):
        raise Invalid(f"unknown decision {decision!r}: use keep or relabel")
    current = repo.current_labels(session, project.id, [sample_id])
    if sample_id not in current:
        raise Invalid(f"sample {sample_id} is not in project {project.id}")
    if label is not None and label not in project.classes:
        raise Invalid(f"label {label!r} is not one of the project's classes")
    found = repo.latest(session, project.id, project.current_embedding_version_id or 0)
    item = next((i for i in (found.items if found else []) if i["sample_id"] == sample_id), None)
    if decision == "keep":
        label = current[sample_id]
    elif label is None:
        raise Invalid("a relabel decision names the new label")
    row = repo.add_decision(session, project_id=project.id, sample_id=sample_id, user_id=user.id, decision=decision,
                            label=label, previous_label=item["label"] if item else current[sample_id],
                            suggested_label=item["suggested_label"] if item else None)
    return {"id": row.id, "sample_id": sample_id, "decision": decision, "label": label,
            "previous_label": row.previous_label, "suggested_label": row.suggested_label}
