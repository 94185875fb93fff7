"""Queries of the label export: each labelled sample with the revision that gives it its label."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Label, Sample, User
from app.repos import labels as label_repo


def labelled_samples(session: Session, project_id: int, batch: int = 2000) \
        -> Iterator[tuple[Sample, Label, str | None]]:
    """(sample, the revision that gives it its label, that revision's username) of every labelled sample, by id,
    fetched ``batch`` rows at a time."""
    current = label_repo.current_revisions(project_id)
    q = (
        select(Sample, Label, User.username)
        .join(current, current.c.sample_id == Sample.id)
        .join(Label, Label.id == current.c.lid)
        .outerjoin(User, User.id == Label.user_id)
        .where(Sample.project_id == project_id, Sample.status == "labelled")
        .order_by(Sample.id)
        .execution_options(yield_per=batch)
    )
    for row in session.execute(q):
        yield row[0], row[1], row[2]


def sample(session: Session, sample_id: int) -> Sample | None:
    return session.get(Sample, sample_id)
