"""Labelling: append-only revisions, with the sample's current label derived from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Label, Prediction, Project, Sample, User
from app.repos import samples as samples_repo
from app.services.errors import Forbidden, Invalid, NotFound


@dataclass
class LabelRequest:
    sample_id: int
    label: str
    duration_ms: int | None = None


def _current_prediction(session: Session, project: Project, sample_ids: Sequence[int]) -> dict[int, Prediction]:
    if project.current_model_version_id is None or not sample_ids:
        return {}
    q = select(Prediction).where(
        Prediction.model_version_id == project.current_model_version_id, Prediction.sample_id.in_(sample_ids)
    )
    return {p.sample_id: p for p in session.scalars(q)}


def add_labels(
    session: Session, project: Project, user: User | None, requests: Sequence[LabelRequest], source: str = "human"
) -> list[Label]:
    """Validate the whole batch first, so a bad item stores nothing; then append one revision each.

    ``user`` is None only for labels that came with the data (an import's class folders)."""
    if not requests:
        raise Invalid("no labels given")
    classes = set(project.classes)
    bad = sorted({r.label for r in requests if r.label not in classes})
    if bad:
        raise Invalid(f"label(s) {bad} are not classes of project '{project.name}' (classes: {project.classes})")
    ids = [r.sample_id for r in requests]
    samples = samples_repo.get_in_project(session, project.id, list(set(ids)))
    missing = sorted(set(ids) - samples.keys())
    if missing:
        raise NotFound(f"sample(s) {missing} not found in project {project.id}")
    shown = _current_prediction(session, project, ids)
    out = []
    for r in requests:
        sample = samples[r.sample_id]
        pred = shown.get(r.sample_id)
        row = Label(
            project_id=project.id,
            sample_id=sample.id,
            user_id=user.id if user else None,
            action="set",
            label=r.label,
            source=source,
            model_version_id=project.current_model_version_id if pred else None,
            suggested_label=pred.label if pred else None,
            suggested_confidence=pred.confidence if pred else None,
            selection_probability=pred.probability if pred else None,
            duration_ms=r.duration_ms,
        )
        session.add(row)
        out.append(row)
        sample.label = r.label
        sample.status = "labelled"
        if sample.leased_by is not None:
            sample.leased_by = None
            sample.lease_expires_at = None
    session.flush()
    return out


def current_label(session: Session, sample_id: int) -> str | None:
    """Replay the sample's history: the newest 'set' that no 'undo' cancels."""
    rows = session.scalars(select(Label).where(Label.sample_id == sample_id).order_by(Label.id)).all()
    undone = {r.undoes_id for r in rows if r.action == "undo"}
    live = [r for r in rows if r.action == "set" and r.id not in undone]
    return live[-1].label if live else None


def undo_label(session: Session, label_id: int, user: User, project_for) -> Label:  # noqa: ANN001
    target = session.get(Label, label_id)
    if target is None:
        raise NotFound(f"label {label_id} not found")
    project, _role = project_for(target.project_id, "label")
    if target.action != "set":
        raise Invalid(f"label {label_id} is itself an undo")
    if not user.is_admin and target.user_id != user.id:
        raise Forbidden("you can only undo your own labels")
    already = session.scalar(select(Label.id).where(Label.undoes_id == label_id))
    if already is not None:
        raise Invalid(f"label {label_id} is already undone")
    row = Label(
        project_id=project.id, sample_id=target.sample_id, user_id=user.id, action="undo", label=None,
        undoes_id=target.id, source=target.source,
    )
    session.add(row)
    session.flush()
    sample = session.get(Sample, target.sample_id)
    assert sample is not None
    sample.label = current_label(session, sample.id)
    sample.status = "labelled" if sample.label is not None else "unlabelled"
    session.flush()
    return row


def history(session: Session, sample_id: int) -> list[Label]:
    return list(session.scalars(select(Label).where(Label.sample_id == sample_id).order_by(Label.id)))
