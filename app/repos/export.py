"""Queries of the label export: each labelled sample with the revision that gives it its label, and the
unlabelled samples the current model suggests a class for with a given confidence or more."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Label, Prediction, Sample, SampleText, User
from app.repos import labels as label_repo


def labelled_samples(session: Session, project_id: int, batch: int = 2000) \
        -> Iterator[tuple[Sample, Label, str | None, str | None]]:
    """(sample, the revision that gives it its label, that revision's username, its document: None for an
    image) of every labelled sample, by id, fetched ``batch`` rows at a time."""
    current = label_repo.current_revisions(project_id)
    q = (
        select(Sample, Label, User.username, SampleText.text)
        .join(current, current.c.sample_id == Sample.id)
        .join(Label, Label.id == current.c.lid)
        .outerjoin(User, User.id == Label.user_id)
        .outerjoin(SampleText, SampleText.sample_id == Sample.id)
        .where(Sample.project_id == project_id, Sample.status == "labelled")
        .order_by(Sample.id)
        .execution_options(yield_per=batch)
    )
    for row in session.execute(q):
        yield row[0], row[1], row[2], row[3]


def suggested_samples(session: Session, project_id: int, model_version_id: int, min_confidence: float,
                      batch: int = 2000) -> Iterator[tuple[Sample, str, float, str | None]]:
    """(sample, suggested class, confidence, its document: None for an image) of every sample with no
    label that model version ``model_version_id`` suggests a class for with ``min_confidence`` or more, by
    id, ``batch`` rows at a time (the predictions' primary key, version then sample id, reads them in order)."""
    q = (
        select(Sample, Prediction.label, Prediction.confidence, SampleText.text)
        .join(Prediction, Prediction.sample_id == Sample.id)
        .outerjoin(SampleText, SampleText.sample_id == Sample.id)
        .where(Prediction.model_version_id == model_version_id, Prediction.label.is_not(None),
               Prediction.confidence >= min_confidence, Sample.project_id == project_id, Sample.label.is_(None))
        .order_by(Sample.id)
        .execution_options(yield_per=batch)
    )
    for s, label, confidence, text in session.execute(q):
        if label is not None and confidence is not None:  # as the query asks
            yield s, label, confidence, text


def sample(session: Session, sample_id: int) -> Sample | None:
    return session.get(Sample, sample_id)
