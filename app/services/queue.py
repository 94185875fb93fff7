"""The labelling queue: serve the samples most worth labelling, each leased to one annotator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from app.models import ModelVersion, Prediction, Project, Sample, User
from app.models.base import utcnow


@dataclass
class QueueEntry:
    sample: Sample
    prediction: Prediction | None
    strategy: str
    model_version: int | None
    lease_expires_at: datetime


def lease_seconds(project: Project, default: int) -> int:
    return int(project.settings.get("lease_seconds", default))


def take(session: Session, project: Project, user: User, limit: int, default_lease_s: int) -> list[QueueEntry]:
    """Lease up to ``limit`` items to ``user``: first what they already hold, then the best free ones.

    The claim is a conditional UPDATE (only rows still free), and on PostgreSQL candidates are read
    with FOR UPDATE SKIP LOCKED, so two annotators asking at once never get the same sample.
    """
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds(project, default_lease_s))
    mv_id = project.current_model_version_id
    free = or_(Sample.lease_expires_at.is_(None), Sample.lease_expires_at < now, Sample.leased_by == user.id)
    q = select(Sample.id).where(Sample.project_id == project.id, Sample.status == "unlabelled", free)
    # What this annotator already holds comes first, so a page reload does not skip items. (A CASE,
    # not a comparison: NULL would sort first on PostgreSQL.)
    mine_first = case((Sample.leased_by == user.id, 0), else_=1)
    if mv_id is not None:
        q = q.join(Prediction, (Prediction.sample_id == Sample.id) & (Prediction.model_version_id == mv_id))
        q = q.order_by(mine_first, Prediction.score.desc(), Sample.id)
    else:
        q = q.order_by(mine_first, Sample.rand_key)
    q = q.limit(limit).with_for_update(skip_locked=True, of=Sample)
    candidates = list(session.scalars(q))
    if not candidates:
        return []
    session.execute(
        update(Sample)
        .where(Sample.id.in_(candidates), free)
        .values(leased_by=user.id, lease_expires_at=expires)
        .execution_options(synchronize_session=False)
    )
    got = {
        s.id: s
        for s in session.scalars(
            select(Sample)
            .where(Sample.id.in_(candidates), Sample.leased_by == user.id, Sample.lease_expires_at == expires)
            .execution_options(populate_existing=True)
        )
    }
    preds: dict[int, Prediction] = {}
    strategy = "random"
    if mv_id is not None:
        preds = {
            p.sample_id: p
            for p in session.scalars(
                select(Prediction).where(Prediction.model_version_id == mv_id, Prediction.sample_id.in_(list(got)))
            )
        }
        mv = session.get(ModelVersion, mv_id)
        strategy = mv.strategy if mv else "unknown"
    return [
        QueueEntry(got[sid], preds.get(sid), strategy, mv_id, expires) for sid in candidates if sid in got
    ]


def release(session: Session, project: Project, user: User, sample_ids: list[int]) -> int:
    """Give leased items back (an annotator skipped them)."""
    res = session.execute(
        update(Sample)
        .where(Sample.project_id == project.id, Sample.id.in_(sample_ids), Sample.leased_by == user.id)
        .values(leased_by=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return res.rowcount or 0
