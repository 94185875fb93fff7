"""Queries on reviews (labels that need a second look) and on the opinions behind them."""

from __future__ import annotations

from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Label, Review, Sample, User
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


def opinions_of_shared(session: Session, project_id: int) -> list[tuple[int, int, str, str]]:
    """(sample id, user id, username, label) of every live label a person gave (not an import's folder,
    not a review's decision) on the samples that have a second opinion, oldest first: what the agreement
    between annotators is computed from. Reads only the samples with a second opinion (a sample two
    people labelled always has one), not the project's every label."""
    shared = (select(Label.sample_id).where(Label.project_id == project_id, Label.opinion == "second",
                                            Label.action == "set").distinct())
    return [(sid, cast(int, uid), name, cast(str, lab)) for sid, uid, name, lab in session.execute(
        select(Label.sample_id, Label.user_id, User.username, Label.label)
        .join(User, User.id == Label.user_id)
        .where(Label.sample_id.in_(shared), Label.source == "human", is_live())
        .order_by(Label.id))]


def sole_labellers(session: Session, project_id: int) -> list[tuple[int, int, str | None]]:
    """(sample id, user id, current label) of the labelled samples whose live labels are all first opinions
    by a person, one and the same (``app/services/overlap.py: awaiting`` over every sample at once)."""
    by_person = (Label.opinion == "primary") & (Label.source == "human") & Label.user_id.is_not(None)
    return [(sid, cast(int, uid), label) for sid, uid, label in session.execute(
        select(Label.sample_id, func.min(Label.user_id), func.min(Sample.label))
        .join(Sample, Sample.id == Label.sample_id)
        .where(Label.project_id == project_id, Sample.status == "labelled", is_live())
        .group_by(Label.sample_id)
        .having(func.min(Label.user_id) == func.max(Label.user_id), func.count().filter(~by_person) == 0))]


def awaiting_of(session: Session, project_id: int) -> dict[int, int]:
    """Sample id -> the annotator whose label awaits a second opinion, for every sample awaiting one."""
    return {sid: cast(int, uid) for sid, uid in session.execute(
        select(Sample.id, Sample.awaiting_second)
        .where(Sample.project_id == project_id, Sample.awaiting_second.is_not(None)))}


def awaiting_count(session: Session, project_id: int) -> int:
    """Samples whose first label awaits a second opinion (read on the partial index of those)."""
    return int(session.scalar(select(func.count()).where(Sample.project_id == project_id,
                                                         Sample.awaiting_second.is_not(None))) or 0)


def open_count(session: Session, project_id: int) -> int:
    return int(session.scalar(
        select(func.count()).where(Review.project_id == project_id, Review.status == "open")) or 0)
