"""The per-project activity log: who labelled how many and when, and the latest events."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Project
from app.repos import labels as label_repo
from app.services import jobs as job_service
from app.services import overlap
from app.services import reviews as review_service


def _label_events(session: Session, project_id: int, limit: int) -> list[dict]:
    """The newest ``limit`` label actions: a label or an undo, or a whole batch of either with its count."""
    events: dict[tuple, dict] = {}
    for lid, action, batch, sid, label, at, name in label_repo.newest_actions(session, project_id, limit * 20):
        key = (action, batch) if batch else (lid,)
        if key not in events:
            if len(events) == limit:
                break
            events[key] = {"at": at.isoformat(), "user": name, "event": "undo" if action == "undo" else "label",
                           "sample_id": None if batch else sid, "label": label}
    batches = {key[1] for key in events if len(key) == 2}
    if batches:  # a batch's whole size, however much of it the window above saw
        sizes = label_repo.batch_sizes(session, batches)
        for key, e in events.items():
            if len(key) == 2:
                e["event"], e["count"] = f"{e['event']} batch", int(sizes.get((key[1], key[0]), 0))
    return list(events.values())


def activity(session: Session, project: Project, limit: int, blind: int | None = None) -> dict:
    """A batch (teach by neighbourhood, and its undo) is one action: one undo, one event with its count.
    ``blind`` (``overlap.blind_for``): the label of an event on a sample whose first label awaits that
    viewer's second opinion is left out."""
    events = _label_events(session, project.id, limit)
    hidden = overlap.hidden_ids(session, project.id, blind)
    for e in events:
        if e["sample_id"] in hidden:
            e["label"] = None
    events += [
        {"at": j.created_at.isoformat(), "user": None, "event": f"job {j.kind} {j.state}", "job_id": j.id}
        for j in job_service.list_jobs(session, project, limit)
    ]
    events.sort(key=lambda e: e["at"], reverse=True)
    return {
        "annotators": [{"username": u, "labels": n, "undos": k, "first_at": a.isoformat() if a else None,
                        "last_at": b.isoformat() if b else None}
                       for u, n, k, a, b in label_repo.per_labeller(session, project.id)],
        "events": events[:limit],
        "agreement": review_service.agreement(session, project.id),
    }
