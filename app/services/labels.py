"""Labelling: append-only revisions, with the sample's current label derived from them.

A sample's first label (and its labeller's own later changes) are "primary" revisions: the newest
live one is the current label. Another annotator's label on an already labelled sample is a "second"
opinion: it is kept, never overwrites the first, and if it disagrees the sample goes to review.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from app.models import Label, LabelCount, Prediction, Project, Sample, User
from app.models.base import utcnow
from app.services import reviews
from app.services.errors import Conflict, Forbidden, Invalid, NotFound

# Queue order of a sample labelled since its model version: after every other (see add_labels).
LABELLED_PRIORITY = -1e18


@dataclass
class LabelRequest:
    sample_id: int
    label: str
    duration_ms: int | None = None


@dataclass(frozen=True)
class _Target:
    """What storing a label needs to know of its sample, and of the suggestion its labeller was shown."""
    id: int
    label: str | None
    status: str
    is_audit: bool
    leased_by: int | None
    shown: bool  # a prediction of the current model version exists
    suggested_label: str | None
    suggested_confidence: float | None


@dataclass
class StoredLabel:
    """A label revision as stored: what the API answers and reviews point at (plain data, not an ORM
    object: the hot path of the service writes it with one INSERT, not through the unit of work)."""
    id: int
    project_id: int
    sample_id: int
    user_id: int | None
    label: str
    source: str
    opinion: str
    model_version_id: int | None
    suggested_label: str | None
    suggested_confidence: float | None
    duration_ms: int | None
    batch_id: str | None
    created_at: datetime
    action: str = "set"


# The hot path's statements are built once: building one (and its cache key) on every call cost
# more of a label call's CPU than running it (bench/load.py). Core, on the tables: no ORM objects.
_S, _P, _L = Sample.__table__.c, Prediction.__table__.c, Label.__table__
_TARGET_COLS = (_S.id, _S.label, _S.status, _S.is_audit, _S.leased_by)
# Locked in id order, so two requests labelling overlapping samples cannot deadlock.
_TARGETS = (select(*_TARGET_COLS).where(_S.project_id == bindparam("pid"), _S.id.in_(bindparam("ids", expanding=True)))
            .order_by(_S.id).with_for_update(of=Sample.__table__))
_TARGETS_SHOWN = (
    select(*_TARGET_COLS, _P.sample_id, _P.label, _P.confidence)
    .outerjoin(Prediction.__table__, (_P.sample_id == _S.id) & (_P.model_version_id == bindparam("mv")))
    .where(_S.project_id == bindparam("pid"), _S.id.in_(bindparam("ids", expanding=True)))
    .order_by(_S.id).with_for_update(of=Sample.__table__)
)
_INSERT_LABELS = insert(_L).returning(_L.c.id, sort_by_parameter_order=True)
_IDS = bindparam("ids", expanding=True)
_SET_LABEL = update(Sample.__table__).where(_S.id.in_(_IDS)).values(label=bindparam("label"), status="labelled")
_SET_LABEL_FREE = _SET_LABEL.values(leased_by=None, lease_expires_at=None)
_FREE = update(Sample.__table__).where(_S.id.in_(_IDS)).values(leased_by=None, lease_expires_at=None)
_TO_QUEUE_END = (update(Prediction.__table__)
                 .where(_P.model_version_id == bindparam("mv"), _P.sample_id.in_(_IDS))
                 .values(priority=bindparam("priority")))


def _targets(session: Session, project: Project, sample_ids: Sequence[int]) -> dict[int, _Target]:
    """The samples and their current predictions in one query, the samples locked.

    The lock (PostgreSQL; SQLite's write lock is the whole database) makes two labels of one sample at
    once take turns: the second sees the first's label and becomes a second opinion, and the counters
    count the sample once."""
    mv = project.current_model_version_id
    params = {"pid": project.id, "ids": list(sample_ids)}
    out = {}
    if mv is None:
        for r in session.execute(_TARGETS, params):
            out[r[0]] = _Target(r[0], r[1], r[2], bool(r[3]), r[4], False, None, None)
    else:
        for r in session.execute(_TARGETS_SHOWN, params | {"mv": mv}):
            out[r[0]] = _Target(r[0], r[1], r[2], bool(r[3]), r[4], r[5] is not None, r[6], r[7])
    return out


def _live(rows: Sequence[Label]) -> list[Label]:
    undone = {r.undoes_id for r in rows if r.action == "undo"}
    return [r for r in rows if r.action == "set" and r.id not in undone]


def _histories(session: Session, sample_ids: Sequence[int]) -> dict[int, list[Label]]:
    out: dict[int, list[Label]] = {sid: [] for sid in sample_ids}
    if sample_ids:
        for row in session.scalars(select(Label).where(Label.sample_id.in_(sample_ids)).order_by(Label.id)):
            out[row.sample_id].append(row)
    return out


def derive_current(rows: Sequence[Label]) -> str | None:
    """The newest live primary revision; failing that, the newest live second opinion."""
    live = _live(rows)
    primary = [r for r in live if r.opinion == "primary"]
    pick = primary or live
    return pick[-1].label if pick else None


def add_labels(
    session: Session, project: Project, user: User | None, requests: Sequence[LabelRequest], source: str = "human",
    batch_id: str | None = None, new_only: bool = False,
) -> list[StoredLabel]:
    """Validate the whole batch first, so a bad item stores nothing; then append one revision each.

    ``user`` is None only for labels that came with the data (an import's class folders). ``new_only``
    (a teach batch, picked from a grid of unlabelled samples): a sample labelled since the grid was
    loaded, in another tab or by someone else, refuses the whole batch (409), never relabels it."""
    if not requests:
        raise Invalid("no labels given")
    classes = set(project.classes)
    bad = sorted({r.label for r in requests if r.label not in classes})
    if bad:
        raise Invalid(f"label(s) {bad} are not classes of project '{project.name}' (classes: {project.classes})")
    ids = [r.sample_id for r in requests]
    if len(set(ids)) != len(ids):
        raise Invalid("a sample appears twice in one request")
    targets = _targets(session, project, ids)
    missing = sorted(set(ids) - targets.keys())
    if missing:
        raise NotFound(f"sample(s) {missing} not found in project {project.id}")
    taken = sorted(sid for sid in ids if targets[sid].label is not None) if new_only else []
    if taken:
        raise Conflict(f"{len(taken)} of these samples were labelled meanwhile (in another tab or by someone "
                       f"else): {taken[:10]}{' ...' if len(taken) > 10 else ''}; nothing was stored. Reload the "
                       "grid to see what is left.")
    # Only a labelled sample can take a second opinion: an unlabelled one (the annotators' usual case)
    # needs no history read.
    histories = _histories(session, [sid for sid in ids if targets[sid].label is not None])
    uid = user.id if user else None
    now = utcnow()
    out: list[StoredLabel] = []
    newly_labelled = newly_audit = 0
    # (new label or None for "unchanged", clear the lease) -> sample ids: one UPDATE per group, so a
    # page of labels, or a neighbourhood of one class, costs one statement.
    sample_updates: dict[tuple[str | None, bool], list[int]] = {}
    for r in requests:
        t = targets[r.sample_id]
        # Someone else's label stands on it: this is a second opinion, kept beside theirs. (Only their
        # primary labels: another's second opinion does not make the labeller's own correction one.)
        others = [x for x in _live(histories.get(r.sample_id, [])) if x.user_id != uid and x.opinion == "primary"]
        opinion = "second" if t.label is not None and others and user is not None else "primary"
        out.append(StoredLabel(
            id=0, project_id=project.id, sample_id=t.id, user_id=uid, label=r.label, source=source, opinion=opinion,
            model_version_id=project.current_model_version_id if t.shown else None,
            suggested_label=t.suggested_label, suggested_confidence=t.suggested_confidence,
            duration_ms=r.duration_ms, batch_id=batch_id, created_at=now,
        ))
        if opinion == "primary" and t.status != "labelled":
            newly_labelled += 1
            newly_audit += t.is_audit
        clear_lease = t.leased_by is not None and (user is None or t.leased_by == uid)
        if opinion == "primary" or clear_lease:
            sample_updates.setdefault((r.label if opinion == "primary" else None, clear_lease), []).append(t.id)
    # The stored fields, less the id the INSERT gives, plus what the answer does not show.
    rows = [{k: v for k, v in vars(x).items() if k != "id"} | {"undoes_id": None} for x in out]
    for stored, new_id in zip(out, session.scalars(_INSERT_LABELS, rows), strict=True):
        stored.id = new_id
    for (label, clear_lease), sids in sample_updates.items():
        if label is None:
            session.execute(_FREE, {"ids": sids})
        else:
            session.execute(_SET_LABEL_FREE if clear_lease else _SET_LABEL, {"ids": sids, "label": label})
    # A labelled sample goes to the end of the current version's queue order, so the queue's index
    # scan does not step over every sample labelled since the last retrain (thousands at 1M samples,
    # where a retrain takes tens of seconds: 23 ms a page). The next version orders everything anew.
    done = [x.sample_id for x in out if x.opinion == "primary" and targets[x.sample_id].shown]
    if done:
        session.execute(_TO_QUEUE_END, {"mv": project.current_model_version_id, "ids": done,
                                        "priority": LABELLED_PRIORITY})
    if source != "review":
        _open_reviews(session, project, out, targets)
    # New labels for the retrain trigger: primary revisions (first labels and corrections); a second
    # opinion never changes what a model learns from.
    bump_counts(session, project.id, uid, sum(x.opinion == "primary" for x in out), newly_labelled, newly_audit)
    return out


def _open_reviews(session: Session, project: Project, out: list[StoredLabel], targets: dict[int, _Target]) -> None:
    for row in out:
        current = targets[row.sample_id].label
        if row.opinion == "second" and row.label != current:
            reviews.open_review(session, project, row, "annotators_disagree", {"current": current, "second": row.label})
        if row.suggested_label and row.suggested_label != row.label and (row.suggested_confidence or 0) >= \
                reviews.confident_threshold(project):
            reviews.open_review(session, project, row, "model_disagrees",
                                {"model": row.suggested_label, "confidence": row.suggested_confidence,
                                 "label": row.label})


@dataclass(frozen=True)
class LabelTotals:
    set_labels: int  # primary "set" revisions, every source: the "new labels" the retrain trigger counts
    labelled: int  # samples with a current label
    audit_labelled: int  # ... of them in the audit pool


_BUMP_AND_SUM_PG = text("""
WITH up AS (
    INSERT INTO label_counts (project_id, shard, set_labels, labelled, audit_labelled)
    VALUES (:p, :shard, :n, :l, :a)
    ON CONFLICT (project_id, shard) DO UPDATE SET
        set_labels = label_counts.set_labels + EXCLUDED.set_labels,
        labelled = label_counts.labelled + EXCLUDED.labelled,
        audit_labelled = label_counts.audit_labelled + EXCLUDED.audit_labelled
    RETURNING 1
)
SELECT coalesce(sum(set_labels), 0) + :n, coalesce(sum(labelled), 0) + :l, coalesce(sum(audit_labelled), 0) + :a
FROM label_counts WHERE project_id = :p
""")


def bump_counts(session: Session, project_id: int, user_id: int | None, set_labels: int, labelled: int,
                audit_labelled: int) -> None:
    """Add to the project's label counters (schema 0007): one upsert into the labeller's own row.

    In the same transaction as the labels, so a rollback takes its counts with it; ``x = x + n``, so
    concurrent calls add up; one row per labeller, so annotators never wait on each other's lock.
    On PostgreSQL the same statement sums the project's rows (its snapshot is from before the upsert,
    hence ``+ n``), so the retrain trigger that follows (``current_totals``) costs no query."""
    if not (set_labels or labelled or audit_labelled):
        return
    params = {"p": project_id, "shard": user_id or 0, "n": set_labels, "l": labelled, "a": audit_labelled}
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(_BUMP_AND_SUM_PG, params).one()
        found = LabelTotals(int(row[0]), int(row[1]), int(row[2]))
    else:
        c = LabelCount
        ins = sqlite.insert(c).values(project_id=project_id, shard=params["shard"], set_labels=set_labels,
                                      labelled=labelled, audit_labelled=audit_labelled)
        session.execute(ins.on_conflict_do_update(
            index_elements=[c.project_id, c.shard],
            set_={"set_labels": c.set_labels + ins.excluded.set_labels, "labelled": c.labelled + ins.excluded.labelled,
                  "audit_labelled": c.audit_labelled + ins.excluded.audit_labelled},
        ))
        found = totals(session, project_id)
    # Valid for this transaction only (another one may add to the counters once this one ends).
    session.info["label_totals"] = (session.get_transaction(), {project_id: found})


_C = LabelCount.__table__.c
_TOTALS = select(func.coalesce(func.sum(_C.set_labels), 0), func.coalesce(func.sum(_C.labelled), 0),
                 func.coalesce(func.sum(_C.audit_labelled), 0)).where(_C.project_id == bindparam("pid"))


def totals(session: Session, project_id: int) -> LabelTotals:
    """The project's counts: a sum over one row per labeller, however many labels and samples."""
    row = session.execute(_TOTALS, {"pid": project_id}).one()
    return LabelTotals(int(row[0]), int(row[1]), int(row[2]))


def current_totals(session: Session, project_id: int) -> LabelTotals:
    """``totals``, or what this transaction's last ``bump_counts`` found for the project."""
    tx, found = session.info.get("label_totals", (None, {}))
    if tx is not None and tx is session.get_transaction() and project_id in found:
        return found[project_id]
    return totals(session, project_id)


def _recompute(session: Session, sample_id: int) -> tuple[int, int]:
    """Re-derive a sample's current label; returns its change to (labelled, labelled audit) counts."""
    sample = session.get(Sample, sample_id)
    assert sample is not None
    was = sample.status == "labelled"
    sample.label = derive_current(history(session, sample_id))
    sample.status = "labelled" if sample.label is not None else "unlabelled"
    delta = int(sample.status == "labelled") - int(was)
    return delta, delta if sample.is_audit else 0


def _undo_rows(session: Session, targets: Sequence[Label], user: User, batch_id: str | None = None) -> list[Label]:
    rows = []
    for target in targets:
        row = Label(project_id=target.project_id, sample_id=target.sample_id, user_id=user.id, action="undo",
                    label=None, undoes_id=target.id, source=target.source, opinion=target.opinion, batch_id=batch_id)
        session.add(row)
        rows.append(row)
    session.flush()
    by_project: dict[int, list[int]] = {}
    for sid, pid in {(t.sample_id, t.project_id) for t in targets}:
        d = _recompute(session, sid)
        acc = by_project.setdefault(pid, [0, 0])
        acc[0] += d[0]
        acc[1] += d[1]
    session.flush()
    for pid, (labelled, audit_labelled) in by_project.items():
        bump_counts(session, pid, user.id, 0, labelled, audit_labelled)
    return rows


def undo_label(session: Session, label_id: int, user: User,
               project_for: Callable[[int, str], tuple[Project, str]]) -> Label:
    """Undo one label: an admin may undo any; an annotator only their own newest live label."""
    target = session.get(Label, label_id)
    if target is None:
        raise NotFound(f"label {label_id} not found")
    project_for(target.project_id, "label")
    if target.action != "set":
        raise Invalid(f"label {label_id} is itself an undo")
    if session.scalar(select(Label.id).where(Label.undoes_id == label_id)) is not None:
        raise Invalid(f"label {label_id} is already undone")
    if not user.is_admin:
        if target.user_id != user.id:
            raise Forbidden("you can only undo your own labels")
        mine = _live(list(session.scalars(
            select(Label).where(Label.project_id == target.project_id, Label.user_id == user.id).order_by(Label.id))))
        if mine and mine[-1].id != target.id:
            raise Forbidden("you can undo only your most recent label (undo that one first)")
    return _undo_rows(session, [target], user)[0]


def undo_batch(session: Session, batch_id: str, user: User,
               project_for: Callable[[int, str], tuple[Project, str]]) -> list[Label]:
    """Undo every live label of one batch (a neighbourhood batch) as one action."""
    rows = list(session.scalars(select(Label).where(Label.batch_id == batch_id, Label.action == "set")))
    if not rows:
        raise NotFound(f"label batch {batch_id} not found")
    project_for(rows[0].project_id, "label")
    if not user.is_admin and any(r.user_id != user.id for r in rows):
        raise Forbidden("you can only undo your own labels")
    undone = set(session.scalars(select(Label.undoes_id).where(Label.undoes_id.in_([r.id for r in rows]))))
    live = [r for r in rows if r.id not in undone]
    if not live:
        raise Invalid(f"label batch {batch_id} is already undone")
    return _undo_rows(session, live, user, batch_id=batch_id)


def new_batch_id() -> str:
    return uuid.uuid4().hex


def history(session: Session, sample_id: int) -> list[Label]:
    return list(session.scalars(select(Label).where(Label.sample_id == sample_id).order_by(Label.id)))
