"""The labelling queue: serve the samples most worth labelling, each leased to one annotator."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.models import Prediction, Project, User
from app.models.base import utcnow
from app.repos import label_counts
from app.repos import queue as queue_repo
from app.repos.queue import LeasedSample
from app.services import overlap
from app.services.project_settings import effective_settings


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
    caller = queue_repo.Caller(project.id, user.id, client, mv_id, now)
    # What this annotator already holds comes first, so a page reload does not skip items.
    held = queue_repo.held(session, caller, limit)
    n_audit = _audit_quota(session, project, limit)
    audit_ids = [sid for sid, is_audit, second in held if is_audit and not second][:n_audit]
    taken = [sid for sid, _, _ in held]
    if len(audit_ids) < n_audit:
        audit_ids += queue_repo.free_audit(session, caller, taken, n_audit - len(audit_ids))
    seconds = [sid for sid, _, second in held if second]
    others = [sid for sid, _, second in held if not second and sid not in set(audit_ids)]
    if mv_id is not None and others:
        # Held items without a prediction of this version (imported since) wait for the next one.
        others = queue_repo.with_prediction(session, caller, others)
    room = limit - len(audit_ids) - len(seconds) - len(others)
    if room > 0 and overlap.Rule(project).active:
        # Samples awaiting a second opinion come before new ones: their first label already trains the
        # model, and a disagreement found early is a review, not a lesson learned wrong.
        seconds += queue_repo.free_second(session, caller, list(set(taken) | set(audit_ids)), room)
    want = limit - len(audit_ids) - len(seconds) - len(others)
    chosen = list(set(taken) | set(audit_ids) | set(seconds))
    fresh = queue_repo.free_best(session, caller, chosen, want) if want > 0 else []
    if len(fresh) < want:
        # The quota is what a page holds at least, not a cap: once the rest of the pool is served, the
        # audit samples left fill the page, or the queue would end with samples still unlabelled.
        audit_ids += queue_repo.free_audit(session, caller, chosen, want - len(fresh))
    candidates = audit_ids + seconds + others + fresh
    if not candidates:
        return []
    got = queue_repo.claim(session, caller, candidates, expires)
    audit_set = set(audit_ids)
    return _entries(session, mv_id, [(got[sid], expires, sid in audit_set) for sid in candidates if sid in got])


def held(session: Session, project: Project, user: User, limit: int, client: str = "") -> list[QueueEntry]:
    """What ``user``'s ``client`` holds now (unlabelled, lease not expired), leasing and renewing nothing:
    a GET reads only, so a link on another site cannot lease samples with the browser's cookie."""
    mv_id = project.current_model_version_id
    rows = queue_repo.held_now(session, queue_repo.Caller(project.id, user.id, client, mv_id, utcnow()), limit)
    return _entries(session, mv_id, [(s, expires, s.is_audit and not s.second) for s, expires in rows])


def _entries(session: Session, mv_id: int | None,
             rows: list[tuple[LeasedSample, datetime, bool]]) -> list[QueueEntry]:
    """Queue entries for (sample, lease end, served as audit) rows, with their predictions of ``mv_id``."""
    preds: dict[int, Prediction] = {}
    strategy, number = "random", None
    if mv_id is not None and rows:
        preds = queue_repo.predictions(session, mv_id, [s.id for s, _, _ in rows])
        strategy, number = queue_repo.strategy(session, mv_id)
    return [QueueEntry(s, preds.get(s.id), "audit" if audit else "overlap" if s.second else strategy, mv_id,
                       expires, number)
            for s, expires, audit in rows]


def _audit_quota(session: Session, project: Project, limit: int) -> int:
    """How many audit items this page should hold so audit labels stay at their share of all labels.

    The audit items are a uniform random sample, never picked by the strategy, so their labels give an
    unbiased accuracy estimate (actively chosen samples are the hard ones). The counts of labelled and
    labelled audit samples are the project's counters (kept with every label, schema 0007), not a
    count over its labelled samples on every queue call."""
    share = float(effective_settings(project.settings)["audit_fraction"])
    if share <= 0:
        return 0
    counts = label_counts.totals(session, project.id)
    total, audited = counts.labelled, counts.audit_labelled
    want = math.ceil(share * (total + limit)) - audited
    return max(0, min(limit, want))


def release(session: Session, project: Project, user: User, sample_ids: list[int]) -> int:
    """Give leased items back (an annotator skipped them)."""
    return queue_repo.release(session, project.id, user.id, sample_ids)
