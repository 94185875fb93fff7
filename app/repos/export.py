"""Queries of the label export: each labelled sample with the revision that set its label."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Label, Sample, User


def labelled_samples(session: Session, project_id: int, batch: int = 2000) \
        -> Iterator[tuple[Sample, Label, str | None]]:
    """(sample, its newest 'set' revision, that revision's username) of every labelled sample, by id,
    fetched ``batch`` rows at a time."""
    last_set = (
        select(Label.sample_id, func.max(Label.id).label("lid"))
        .where(Label.project_id == project_id, Label.action == "set")
        .group_by(Label.sample_id)
        .subquery()
    )
    q = (
        select(Sample, Label, User.username)
        .join(last_set, last_set.c.sample_id == Sample.id)
        .join(Label, Label.id == last_set.c.lid)
        .outerjoin(User, User.id == Label.user_id)
        .where(Sample.project_id == project_id, Sample.status == "labelled")
        .order_by(Sample.id)
        .execution_options(yield_per=batch)
    )
    for row in session.execute(q):
        yield row[0], row[1], row[2]


def sample(session: Session, sample_id: int) -> Sample | None:
    return session.get(Sample, sample_id)
