"""The labelling queue: serve the samples most worth labelling, each leased to one annotator."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.orm import Session

from app.models import ModelVersion, Prediction, Project, Sample, User
from app.models.base import utcnow
from app.services import labels as label_service
from app.services.project_settings import effective_settings


@dataclass(frozen=True)
class LeasedSample:
    id: int
    filename: str
    width: int | None
    height: int | None
    is_audit: bool


@dataclass
class QueueEntry:
    sample: LeasedSample
    prediction: Prediction | None
    strategy: str
    model_version: int | None
    lease_expires_at: datetime
    model_number: int | None = None


def lease_seconds(project: Project, default: int) -> int:
    return int((project.settings or {}).get("lease_seconds", default))


# Every page an annotator asks for runs these, so they are built once (building a statement and its
# cache key cost more CPU than running it). Core, on the table: plain rows, no ORM objects.
# Each is a query an index answers by reading only the rows it returns (a partial index on leased
# samples, the audit partial index, the rand_key index, the predictions' priority index): a page costs
# the same with a thousand samples or a million. (One ORDER BY "mine first, then best" sorted the pool.)
_S, _P = Sample.__table__, Prediction.__table__
_UNLABELLED = (_S.c.project_id == bindparam("pid"), _S.c.status == "unlabelled")
_FREE = or_(_S.c.lease_expires_at.is_(None), _S.c.lease_expires_at < bindparam("now"))
_NOT_TAKEN = _S.c.id.not_in(bindparam("taken", expanding=True))
_LOCK = {"skip_locked": True, "of": _S}
# A lease belongs to a user's client (a browser tab, "" for a caller that names none): two tabs of one
# user are served different samples, as two annotators are.
_MINE = (_S.c.leased_by == bindparam("uid")) & (_S.c.lease_client == bindparam("client"))
_HELD = (select(_S.c.id, _S.c.is_audit).where(*_UNLABELLED, _MINE)
         .order_by(_S.c.rand_key).limit(bindparam("limit")).with_for_update(**_LOCK))
# Plain ``is_audit``, not ``is_audit IS true``: PostgreSQL matches the partial index
# ix_samples_audit_queue (WHERE is_audit AND ...) only to the former; with ``IS true`` it walked the
# whole-pool index instead, stepping over thousands of non-audit rows (11 ms a page at 1M samples).
_AUDIT = (select(_S.c.id).where(*_UNLABELLED, _S.c.is_audit, _FREE, _NOT_TAKEN)
          .order_by(_S.c.rand_key).limit(bindparam("limit")).with_for_update(**_LOCK))
_ON_PRED = (_P.c.sample_id == _S.c.id) & (_P.c.model_version_id == bindparam("mv"))
_BEST_FIRST = (_P.c.priority.desc(), _P.c.sample_id.desc())
_HELD_WITH_PRED = (select(_S.c.id).join(_P, _ON_PRED).where(_S.c.id.in_(bindparam("ids", expanding=True)))
                   .order_by(*_BEST_FIRST))
_FRESH_BY_PRED = (select(_S.c.id).join(_P, _ON_PRED).where(*_UNLABELLED, _S.c.is_audit.is_(False), _FREE, _NOT_TAKEN)
                  .order_by(*_BEST_FIRST).limit(bindparam("limit")).with_for_update(**_LOCK))
_FRESH_RANDOM = (select(_S.c.id).where(*_UNLABELLED, _S.c.is_audit.is_(False), _FREE, _NOT_TAKEN)
                 .order_by(_S.c.rand_key).limit(bindparam("limit")).with_for_update(**_LOCK))
# The claim returns the rows it took: only those are served (a candidate someone else claimed
# meanwhile is not free any more and is left out).
_CLAIM = (update(_S)
          .where(_S.c.id.in_(bindparam("ids", expanding=True)), or_(_FREE, _MINE))
          .values(leased_by=bindparam("uid"), lease_client=bindparam("client"), lease_expires_at=bindparam("expires"))
          .returning(_S.c.id, _S.c.filename, _S.c.width, _S.c.height, _S.c.is_audit))
_PREDICTIONS = select(Prediction).where(Prediction.model_version_id == bindparam("mv"),
                                        Prediction.sample_id.in_(bindparam("ids", expanding=True)))
# The one column: the row's metrics (curves, confusion matrix) are JSON to parse for nothing.
_STRATEGY = select(ModelVersion.strategy, ModelVersion.number).where(ModelVersion.id == bindparam("mv"))


def take(session: Session, project: Project, user: User, limit: int, default_lease_s: int,
         client: str = "") -> list[QueueEntry]:
    """Lease up to ``limit`` items to ``user``'s ``client`` (a browser tab's id): first what that client
    already holds, then the best free ones.

    The claim is a conditional UPDATE (only rows still free), and on PostgreSQL candidates are read
    with FOR UPDATE SKIP LOCKED, so two annotators asking at once never get the same sample.
    """
    now = utcnow()
    expires = now + timedelta(seconds=lease_seconds(project, default_lease_s))
    mv_id = project.current_model_version_id
    base = {"pid": project.id, "now": now, "uid": user.id, "client": client, "mv": mv_id}
    # What this annotator already holds comes first, so a page reload does not skip items.
    held = session.execute(_HELD, base | {"limit": limit}).all()
    n_audit = _audit_quota(session, project, limit)
    audit_ids = [sid for sid, is_audit in held if is_audit][:n_audit]
    taken = [sid for sid, _ in held]
    if len(audit_ids) < n_audit:
        audit_ids += session.scalars(_AUDIT, base | {"taken": taken, "limit": n_audit - len(audit_ids)})
    others = [sid for sid, _ in held if sid not in set(audit_ids)]
    if mv_id is not None and others:
        # Held items without a prediction of this version (imported since) wait for the next one.
        others = list(session.scalars(_HELD_WITH_PRED, base | {"ids": others}))
    want = limit - len(audit_ids) - len(others)
    fresh = []
    if want > 0:
        fresh = list(session.scalars(_FRESH_BY_PRED if mv_id is not None else _FRESH_RANDOM,
                                     base | {"taken": list(set(taken) | set(audit_ids)), "limit": want}))
    candidates = audit_ids + others + fresh
    if not candidates:
        return []
    got = {r.id: LeasedSample(r.id, r.filename, r.width, r.height, bool(r.is_audit))
           for r in session.execute(_CLAIM, base | {"ids": candidates, "expires": expires})}
    preds: dict[int, Prediction] = {}
    strategy, number = "random", None
    audit_set = set(audit_ids)
    if mv_id is not None:
        preds = {p.sample_id: p for p in session.scalars(_PREDICTIONS, {"mv": mv_id, "ids": list(got)})}
        strategy, number = session.execute(_STRATEGY, {"mv": mv_id}).one_or_none() or ("unknown", None)
    return [
        QueueEntry(got[sid], preds.get(sid), "audit" if sid in audit_set else strategy, mv_id, expires, number)
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
