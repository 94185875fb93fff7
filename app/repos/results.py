"""Queries on what the model thinks: a model version's predictions, page by page or by suggested class,
and the project's model versions (the learning curve)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ModelVersion, Prediction, Sample
from app.repos import data_checks


def predictions_page(session: Session, model_version_id: int, after_sample_id: int, limit: int) -> list[Prediction]:
    """Up to ``limit`` predictions of a model version for sample ids above ``after_sample_id``, in id order."""
    return list(session.scalars(
        select(Prediction)
        .where(Prediction.model_version_id == model_version_id, Prediction.sample_id > after_sample_id)
        .order_by(Prediction.sample_id).limit(limit)
    ))


def model_versions(session: Session, project_id: int) -> list[ModelVersion]:
    """The project's model versions, oldest first."""
    return list(session.scalars(select(ModelVersion).where(ModelVersion.project_id == project_id)
                                .order_by(ModelVersion.id)))


def suggested(session: Session, model_version_id: int, label: str, min_confidence: float, limit: int) -> list[int]:
    """Unlabelled samples a model version suggests as ``label`` at ``min_confidence`` or more, most
    confident first; none taken out of the pool (labelling one there would count nowhere)."""
    return list(session.scalars(
        select(Prediction.sample_id)
        .join(Sample, Sample.id == Prediction.sample_id)
        .where(Prediction.model_version_id == model_version_id, Prediction.label == label,
               Prediction.confidence >= min_confidence, Sample.status == "unlabelled",
               data_checks.in_pool(Sample.id))
        .order_by(Prediction.confidence.desc(), Prediction.sample_id)
        .limit(limit)
    ))
