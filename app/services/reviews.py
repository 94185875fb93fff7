"""The review list: labels that disagree with another annotator or with a confident model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Label, Project, Review, Sample, User
from app.models.base import utcnow
from app.services.errors import Forbidden, Invalid, NotFound
from app.services.project_settings import effective_settings

if TYPE_CHECKING:  # labels imports this module
    from app.services.labels import StoredLabel


def confident_threshold(project: Project) -> float:
    return float(effective_settings(project.settings)["review_confidence"])


def open_review(session: Session, project: Project, label: Label | StoredLabel, reason: str, detail: dict) -> Review:
    review = Review(project_id=project.id, sample_id=label.sample_id, label_id=label.id, reason=reason, detail=detail)
    session.add(review)
    session.flush()
    return review


def list_reviews(session: Session, project: Project, status: str = "open", limit: int = 100) -> list[Review]:
    return list(session.scalars(
        select(Review).where(Review.project_id == project.id, Review.status == status).order_by(Review.id).limit(limit)
    ))


def resolve(session: Session, review_id: int, label: str, user: User, project_for) -> StoredLabel:
    """The reviewer's decision becomes the sample's primary label; the review closes."""
    from app.services.labels import LabelRequest, add_labels

    review = session.get(Review, review_id)
    if review is None:
        raise NotFound(f"review {review_id} not found")
    project, role = project_for(review.project_id, "view")
    if role not in ("admin", "reviewer"):
        raise Forbidden("only an admin or a project reviewer resolves reviews")
    if review.status != "open":
        raise Invalid(f"review {review_id} is already {review.status}")
    sample = session.get(Sample, review.sample_id)
    assert sample is not None
    # The decision overrides whatever is current, so clear the label first and add it as primary.
    sample.label = None
    rows = add_labels(session, project, user, [LabelRequest(review.sample_id, label)], source="review")
    sample.label, sample.status = label, "labelled"
    now = utcnow()
    for r in session.scalars(select(Review).where(Review.sample_id == review.sample_id, Review.status == "open")):
        r.status, r.resolved_by, r.resolved_at, r.resolution_label_id = "resolved", user.id, now, rows[0].id
    session.flush()
    return rows[0]


def agreement(session: Session, project_id: int) -> dict:
    """Among samples with a second opinion: how often the opinions match the current label."""
    q = (
        select(func.count(), func.count().filter(Label.label == Sample.label))
        .select_from(Label)
        .join(Sample, Sample.id == Label.sample_id)
        .where(Label.project_id == project_id, Label.opinion == "second", Label.action == "set")
    )
    total, agree = session.execute(q).one()
    open_reviews = session.scalar(
        select(func.count()).where(Review.project_id == project_id, Review.status == "open"))
    return {"second_opinions": int(total), "agreeing": int(agree),
            "rate": (agree / total) if total else None, "open_reviews": int(open_reviews or 0)}
