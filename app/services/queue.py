"""The labelling queue: serve the samples most worth labelling, each leased to one annotator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import math

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.orm import Session

from app.models import ModelVersion, Prediction, Project, Sample, User
from app.models.base import utcnow
from app.services.project_settings import effective_settings


@dataclass
class QueueEntry:
    sample: Sample
    prediction: Prediction | None
    strategy: str
    model_version: int | None
    lease_expires_at: datetime


def lease_seconds(project: Project, default: int) -> int:
    return int((project.settings or {}).get("lease_seconds", default))


def take(session: Session, project: Project, user: User, limit: int, default_lease_s: int) -> list[QueueEntry]:
    """Lease up to ``limit`` items to ``user``: first what they already hold, then the best free ones.

    The claim is a conditional UPDATE (only rows still free), and on PostgreSQL candidates are read
    with FOR UPDATE SKIP LOCKED, so two annotators asking at once never get the same sample.
    """
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds(project, default_lease_s))
    mv_id = project.current_model_version_id
    free = or_(Sample.lease_expires_at.is_(None), Sample.lease_expires_at < now, Sample.leased_by == user.id)
    base = select(Sample.id).where(Sample.project_id == project.id, Sample.status == "unlabelled", free)
    # What this annotator already holds comes first, so a page reload does not skip items. (A CASE,
    # not a comparison: NULL would sort first on PostgreSQL.)
    mine_first = case((Sample.leased_by == user.id, 0), else_=1)
    n_audit = _audit_quota(session, project, limit)
    audit_ids: list[int] = []
    if n_audit:
        audit_q = base.where(Sample.is_audit.is_(True)).order_by(mine_first, Sample.rand_key)
        audit_ids = list(session.scalars(audit_q.limit(n_audit).with_for_update(skip_locked=True, of=Sample)))
    q = base.where(or_(Sample.is_audit.is_(False), Sample.leased_by == user.id))
    if audit_ids:
        q = q.where(Sample.id.not_in(audit_ids))
    if mv_id is not None:
        q = q.join(Prediction, (Prediction.sample_id == Sample.id) & (Prediction.model_version_id == mv_id))
        q = q.order_by(mine_first, Prediction.priority.desc(), Sample.id)
    else:
        q = q.order_by(mine_first, Sample.rand_key)
    q = q.limit(limit - len(audit_ids)).with_for_update(skip_locked=True, of=Sample)
    candidates = audit_ids + list(session.scalars(q))
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
    audit_set = set(audit_ids)
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
        QueueEntry(got[sid], preds.get(sid), "audit" if sid in audit_set else strategy, mv_id, expires)
        for sid in candidates
        if sid in got
    ]


def _audit_quota(session: Session, project: Project, limit: int) -> int:
    """How many audit items this page should hold so audit labels stay at their share of all labels.

    The audit items are a uniform random sample, never picked by the strategy, so their labels give an
    unbiased accuracy estimate (actively chosen samples are the hard ones)."""
    share = float(effective_settings(project.settings)["audit_fraction"])
    if share <= 0:
        return 0
    counts = session.execute(
        select(func.count(), func.count().filter(Sample.is_audit.is_(True)))
        .where(Sample.project_id == project.id, Sample.status == "labelled")
    ).one()
    total, audited = int(counts[0]), int(counts[1])
    want = math.ceil(share * (total + limit)) - audited
    return max(0, min(limit, want))


def release(session: Session, project: Project, user: User, sample_ids: list[int]) -> int:
    """Give leased items back (an annotator skipped them)."""
    res = session.execute(
        update(Sample)
        .where(Sample.project_id == project.id, Sample.id.in_(sample_ids), Sample.leased_by == user.id)
        .values(leased_by=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return res.rowcount or 0
