"""The labelling queue: serve the samples most worth labelling, each leased to one annotator."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from app.models import ModelVersion, Prediction, Project, Sample, User
from app.models.base import utcnow
from app.services import labels as label_service
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
    # Each step is a query an index answers by reading only the rows it returns (a partial index on
    # leased samples, the rand_key index, the predictions' priority index): a page costs the same with a
    # thousand samples or a million. (One ORDER BY "mine first, then best" sorted the whole pool.)
    unlabelled = (Sample.project_id == project.id, Sample.status == "unlabelled")
    free = or_(Sample.lease_expires_at.is_(None), Sample.lease_expires_at < now)
    # What this annotator already holds comes first, so a page reload does not skip items.
    held = session.execute(
        select(Sample.id, Sample.is_audit).where(*unlabelled, Sample.leased_by == user.id)
        .order_by(Sample.rand_key).limit(limit).with_for_update(skip_locked=True, of=Sample)
    ).all()
    n_audit = _audit_quota(session, project, limit)
    audit_ids = [sid for sid, is_audit in held if is_audit][:n_audit]
    taken = {sid for sid, _ in held}
    if len(audit_ids) < n_audit:
        audit_q = select(Sample.id).where(*unlabelled, Sample.is_audit.is_(True), free)
        if taken:
            audit_q = audit_q.where(Sample.id.not_in(taken))
        audit_ids += session.scalars(audit_q.order_by(Sample.rand_key).limit(n_audit - len(audit_ids))
                                     .with_for_update(skip_locked=True, of=Sample))
    others = [sid for sid, _ in held if sid not in set(audit_ids)]
    if mv_id is not None:
        on_pred = (Prediction.sample_id == Sample.id) & (Prediction.model_version_id == mv_id)
        # Held items without a prediction of this version (imported since) wait for the next one.
        if others:
            others = list(session.scalars(select(Sample.id).join(Prediction, on_pred).where(Sample.id.in_(others))
                                          .order_by(Prediction.priority.desc(), Prediction.sample_id.desc())))
        q = (select(Sample.id).join(Prediction, on_pred).where(*unlabelled, Sample.is_audit.is_(False), free)
             .order_by(Prediction.priority.desc(), Prediction.sample_id.desc()))
    else:
        q = select(Sample.id).where(*unlabelled, Sample.is_audit.is_(False), free).order_by(Sample.rand_key)
    chosen = set(audit_ids) | set(others)
    if chosen | taken:
        q = q.where(Sample.id.not_in(chosen | taken))
    want = limit - len(audit_ids) - len(others)
    fresh = list(session.scalars(q.limit(want).with_for_update(skip_locked=True, of=Sample))) if want > 0 else []
    candidates = audit_ids + others + fresh
    if not candidates:
        return []
    # The claim returns the rows it took: only those are served (a candidate someone else claimed
    # meanwhile is not free any more and is left out).
    got = {
        s.id: s
        for s in session.scalars(
            update(Sample)
            .where(Sample.id.in_(candidates), or_(free, Sample.leased_by == user.id))
            .values(leased_by=user.id, lease_expires_at=expires)
            .returning(Sample)
            .execution_options(synchronize_session=False, populate_existing=True)
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
        # The one column: the row's metrics (curves, confusion matrix) are JSON to parse for nothing.
        strategy = session.scalar(select(ModelVersion.strategy).where(ModelVersion.id == mv_id)) or "unknown"
    return [
        QueueEntry(got[sid], preds.get(sid), "audit" if sid in audit_set else strategy, mv_id, expires)
        for sid in candidates
        if sid in got
    ]


def _audit_quota(session: Session, project: Project, limit: int) -> int:
    """How many audit items this page should hold so audit labels stay at their share of all labels.

    The audit items are a uniform random sample, never picked by the strategy, so their labels give an
    unbiased accuracy estimate (actively chosen samples are the hard ones). The counts of labelled and
    labelled audit samples are the project's counters (kept with every label, schema 0007), not a
    count over its labelled samples on every queue call."""
    share = float(effective_settings(project.settings)["audit_fraction"])
    if share <= 0:
        return 0
    counts = label_service.totals(session, project.id)
    total, audited = counts.labelled, counts.audit_labelled
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
