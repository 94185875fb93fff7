"""Queries on reviews (labels that need a second look) and on the opinions behind them."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Label, Review, Sample
from app.repos.labels import StoredLabel, is_live


def add(session: Session, label: Label | StoredLabel, reason: str, detail: dict) -> Review:
    review = Review(project_id=label.project_id, sample_id=label.sample_id, label_id=label.id, reason=reason,
                    detail=detail)
    session.add(review)
    session.flush()
    return review


def get(session: Session, review_id: int) -> Review | None:
    return session.get(Review, review_id)


def of_project(session: Session, project_id: int, status: str, limit: int) -> list[Review]:
    return list(session.scalars(
        select(Review).where(Review.project_id == project_id, Review.status == status).order_by(Review.id).limit(limit)
    ))


def open_of_sample(session: Session, sample_id: int) -> list[Review]:
    return list(session.scalars(select(Review).where(Review.sample_id == sample_id, Review.status == "open")))


def second_opinion_counts(session: Session, project_id: int) -> tuple[int, int]:
    """(live second opinions, of them agreeing with their sample's current label); an undone one is gone."""
    total, agree = session.execute(
        select(func.count(), func.count().filter(Label.label == Sample.label))
        .select_from(Label).join(Sample, Sample.id == Label.sample_id)
        .where(Label.project_id == project_id, Label.opinion == "second", is_live(Label))
    ).one()
    return int(total), int(agree)


def open_count(session: Session, project_id: int) -> int:
    return int(session.scalar(
        select(func.count()).where(Review.project_id == project_id, Review.status == "open")) or 0)
