"""Queries on notes beside the labels: unsure marks and their reviews, comments, guidelines and the
example samples they show."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from app.models import Label, Prediction, ProjectGuidelines, Review, Sample, SampleComment, User
from app.repos import data_checks

# ---------------------------------------------------------------- unsure marks


def is_undone(session: Session, label_id: int) -> bool:
    """Whether an undo revision points at revision ``label_id``."""
    undo = aliased(Label)
    return bool(session.scalar(select(exists().where(undo.undoes_id == label_id))))


def open_mark_of_sample(session: Session, sample_id: int) -> Label | None:
    """The newest live "unsure" mark of a sample whose review is still open."""
    undo = aliased(Label)
    return session.scalar(
        select(Label).join(Review, Review.label_id == Label.id)
        .where(Label.sample_id == sample_id, Label.action == "unsure", Review.status == "open",
               ~exists().where(undo.sample_id == Label.sample_id, undo.undoes_id == Label.id))
        .order_by(Label.id.desc()).limit(1))


def reviews_of_label(session: Session, label_id: int) -> list[Review]:
    return list(session.scalars(select(Review).where(Review.label_id == label_id).order_by(Review.id)))


def reopen_unsure_review(session: Session, sample_id: int) -> None:
    """Open again the newest "unsure" review of a sample, if none of its reviews is open."""
    if session.scalar(select(Review.id).where(Review.sample_id == sample_id, Review.status == "open").limit(1)):
        return
    review = session.scalar(select(Review).where(Review.sample_id == sample_id, Review.reason == "unsure")
                            .order_by(Review.id.desc()).limit(1))
    if review is not None:
        review.status, review.resolved_by, review.resolved_at, review.resolution_label_id = "open", None, None, None


def unsure_count(session: Session, project_id: int) -> int:
    """Samples in doubt now (marked unsure, no decision yet)."""
    return int(session.scalar(
        select(func.count()).select_from(Sample).where(Sample.project_id == project_id, Sample.status == "unsure",
                                                      data_checks.in_pool(Sample.id)))
        or 0)


# ---------------------------------------------------------------- comments


def add_comment(session: Session, project_id: int, sample_id: int, user_id: int, text: str) -> SampleComment:
    row = SampleComment(project_id=project_id, sample_id=sample_id, user_id=user_id, text=text)
    session.add(row)
    session.flush()
    return row


def comments_of(session: Session, sample_id: int, limit: int) -> list[tuple[SampleComment, str | None]]:
    """A sample's comments, oldest first, each with its writer's name."""
    return [(c, name) for c, name in session.execute(
        select(SampleComment, User.username).outerjoin(User, User.id == SampleComment.user_id)
        .where(SampleComment.sample_id == sample_id).order_by(SampleComment.id).limit(limit))]


def comment_counts(session: Session, sample_ids: Sequence[int]) -> dict[int, int]:
    if not sample_ids:
        return {}
    return {int(sid): int(n) for sid, n in session.execute(
        select(SampleComment.sample_id, func.count()).where(SampleComment.sample_id.in_(sample_ids))
        .group_by(SampleComment.sample_id))}


# ---------------------------------------------------------------- guidelines


def guidelines(session: Session, project_id: int) -> ProjectGuidelines | None:
    return session.get(ProjectGuidelines, project_id)


def username(session: Session, user_id: int | None) -> str | None:
    return session.scalar(select(User.username).where(User.id == user_id)) if user_id else None


def labelled_as(session: Session, project_id: int, sample_ids: Sequence[int]) -> dict[int, str | None]:
    """Sample id -> its current label (None: not labelled), for those of ``sample_ids`` in the project."""
    if not sample_ids:
        return {}
    return {int(sid): (lab if status == "labelled" else None) for sid, lab, status in session.execute(
        select(Sample.id, Sample.label, Sample.status)
        .where(Sample.project_id == project_id, Sample.id.in_(sample_ids)))}


def most_confident(session: Session, project_id: int, model_version_id: int | None, label: str,
                   limit: int) -> list[int]:
    """Labelled samples of class ``label`` the model agrees with most (its prediction of that class, most
    confident first); without a model, the newest labelled ones."""
    base = select(Sample.id).where(Sample.project_id == project_id, Sample.status == "labelled",
                                   Sample.label == label)
    if model_version_id is None:
        return [int(x) for x in session.scalars(base.order_by(Sample.id.desc()).limit(limit))]
    q = (base.join(Prediction, (Prediction.sample_id == Sample.id) & (Prediction.model_version_id == model_version_id))
         .where(Prediction.label == label).order_by(Prediction.confidence.desc(), Sample.id).limit(limit))
    return [int(x) for x in session.scalars(q)]
