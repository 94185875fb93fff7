"""The review list: labels that disagree with another annotator or with a confident model.

Storing a label opens reviews (``app/services/labels.py``, through ``app/repos/reviews.py``); this
module lists and resolves them, a decision being a new label: it depends on labelling, never the
reverse.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.models import Project, Review, User
from app.models.base import utcnow
from app.repos import labels as label_repo
from app.repos import reviews as review_repo
from app.repos import samples as samples_repo
from app.repos.label_counts import LabelTotals
from app.repos.labels import StoredLabel
from app.services.errors import Invalid, NotFound
from app.services.labels import LabelRequest, add_labels


def list_reviews(session: Session, project: Project, status: str = "open", limit: int = 100) -> list[Review]:
    return review_repo.of_project(session, project.id, status, limit)


def opinions(session: Session, sample_id: int) -> list[dict]:
    """The live labels of a sample under review, each with its labeller."""
    return [{"label_id": lab.id, "label": lab.label, "username": name, "opinion": lab.opinion}
            for lab, name in label_repo.live_opinions(session, sample_id)]


@dataclass(frozen=True)
class Decision:
    project: Project
    label: StoredLabel
    totals: LabelTotals | None  # the label counters after it (``labels.Added.totals``)


def get_review(session: Session, review_id: int) -> Review:
    review = review_repo.get(session, review_id)
    if review is None:
        raise NotFound(f"review {review_id} not found")
    return review


def resolve(session: Session, review: Review, project: Project, label: str, user: User) -> Decision:
    """The reviewer's decision (the caller may review in ``project``, the review's) becomes the sample's
    primary label; the review closes."""
    if review.status != "open":
        raise Invalid(f"review {review.id} is already {review.status}")
    sample = samples_repo.get(session, review.sample_id)
    assert sample is not None
    # The decision overrides whatever is current, so clear the label first and add it as primary.
    sample.label = None
    added = add_labels(session, project, user, [LabelRequest(review.sample_id, label)], source="review")
    sample.label, sample.status = label, "labelled"
    now, decided = utcnow(), added.labels[0]
    for r in review_repo.open_of_sample(session, review.sample_id):
        r.status, r.resolved_by, r.resolved_at, r.resolution_label_id = "resolved", user.id, now, decided.id
    session.flush()
    return Decision(project, decided, added.totals)


def agreement(session: Session, project_id: int) -> dict:
    """Among samples with a second opinion: how often the opinions match the current label."""
    total, agree = review_repo.second_opinion_counts(session, project_id)
    return {"second_opinions": total, "agreeing": agree, "rate": (agree / total) if total else None,
            "open_reviews": review_repo.open_count(session, project_id)}
