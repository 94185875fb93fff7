"""Queries on the likely-label-error sets (issue 18): store a run's list, read the one for an embedding."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.models import LabelIssueDecision, LabelIssueSet, Sample


def store(session: Session, *, project_id: int, embedding_version_id: int, model_version_id: int | None,
          labels: int, items: list[dict[str, Any]], metrics: dict[str, Any]) -> int:
    """Replace the project's sets with this run's (only the newest is ever read)."""
    session.execute(delete(LabelIssueSet).where(LabelIssueSet.project_id == project_id))
    row = LabelIssueSet(project_id=project_id, embedding_version_id=embedding_version_id,
                        model_version_id=model_version_id, labels=labels, items=items, metrics=metrics)
    session.add(row)
    session.flush()
    return row.id


def latest(session: Session, project_id: int, embedding_version_id: int) -> LabelIssueSet | None:
    """The newest set computed on ``embedding_version_id``; None when none has run on it."""
    return session.scalars(
        select(LabelIssueSet)
        .where(LabelIssueSet.project_id == project_id, LabelIssueSet.embedding_version_id == embedding_version_id)
        .order_by(LabelIssueSet.id.desc()).limit(1)
    ).first()


def current_labels(session: Session, project_id: int, sample_ids: list[int]) -> dict[int, str | None]:
    """{sample id: its current label} for those of ``sample_ids`` still in the project."""
    return {sid: label for sid, label in session.execute(
        select(Sample.id, Sample.label).where(Sample.project_id == project_id, Sample.id.in_(sample_ids)))}


def kept(session: Session, project_id: int) -> set[tuple[int, str | None]]:
    """(sample id, label) pairs an expert decided to keep."""
    return {(sid, label) for sid, label in session.execute(
        select(LabelIssueDecision.sample_id, LabelIssueDecision.label)
        .where(LabelIssueDecision.project_id == project_id, LabelIssueDecision.decision == "keep"))}


def add_decision(session: Session, **values: object) -> LabelIssueDecision:
    row = LabelIssueDecision(**values)
    session.add(row)
    session.flush()
    return row
