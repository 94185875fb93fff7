"""Labelling: append-only revisions, with the sample's current label derived from them.

A sample's first label (and its labeller's own later changes) are "primary" revisions: the newest
live one is the current label. Another annotator's label on an already labelled sample is a "second"
opinion: it is kept, never overwrites the first, and if it disagrees the sample goes to review.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from app.models import Label, LabelCount, Prediction, Project, Sample, User
from app.repos import samples as samples_repo
from app.services import reviews
from app.services.errors import Forbidden, Invalid, NotFound

# Queue order of a sample labelled since its model version: after every other (see add_labels).
LABELLED_PRIORITY = -1e18


@dataclass
class LabelRequest:
    sample_id: int
    label: str
    duration_ms: int | None = None


def _current_prediction(session: Session, project: Project, sample_ids: Sequence[int]) -> dict[int, Prediction]:
    if project.current_model_version_id is None or not sample_ids:
        return {}
    q = select(Prediction).where(
        Prediction.model_version_id == project.current_model_version_id, Prediction.sample_id.in_(sample_ids)
    )
    return {p.sample_id: p for p in session.scalars(q)}


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
    batch_id: str | None = None,
) -> list[Label]:
    """Validate the whole batch first, so a bad item stores nothing; then append one revision each.

    ``user`` is None only for labels that came with the data (an import's class folders)."""
    if not requests:
        raise Invalid("no labels given")
    classes = set(project.classes)
    bad = sorted({r.label for r in requests if r.label not in classes})
    if bad:
        raise Invalid(f"label(s) {bad} are not classes of project '{project.name}' (classes: {project.classes})")
    ids = [r.sample_id for r in requests]
    if len(set(ids)) != len(ids):
        raise Invalid("a sample appears twice in one request")
    samples = samples_repo.get_in_project(session, project.id, list(set(ids)))
    missing = sorted(set(ids) - samples.keys())
    if missing:
        raise NotFound(f"sample(s) {missing} not found in project {project.id}")
    shown = _current_prediction(session, project, ids)
    # Only a labelled sample can take a second opinion: an unlabelled one (the annotators' usual case)
    # needs no history read.
    histories = _histories(session, [sid for sid in ids if samples[sid].label is not None])
    out = []
    newly_labelled = newly_audit = 0
    for r in requests:
        sample = samples[r.sample_id]
        pred = shown.get(r.sample_id)
        live = _live(histories.get(r.sample_id, []))
        others = [x for x in live if x.user_id != (user.id if user else None)]
        # Someone else already labelled it: this is a second opinion, kept beside theirs.
        opinion = "second" if sample.label is not None and others and user is not None else "primary"
        row = Label(
            project_id=project.id, sample_id=sample.id, user_id=user.id if user else None, action="set",
            label=r.label, source=source, opinion=opinion,
            model_version_id=project.current_model_version_id if pred else None,
            suggested_label=pred.label if pred else None,
            suggested_confidence=pred.confidence if pred else None,
            selection_probability=pred.probability if pred else None,
            duration_ms=r.duration_ms, batch_id=batch_id,
        )
        session.add(row)
        out.append(row)
        if opinion == "primary":
            if sample.status != "labelled":
                newly_labelled += 1
                newly_audit += bool(sample.is_audit)
            sample.label, sample.status = r.label, "labelled"
        if sample.leased_by is not None and (user is None or sample.leased_by == user.id):
            sample.leased_by, sample.lease_expires_at = None, None
    session.flush()
    # A labelled sample goes to the end of the current version's queue order, so the queue's index
    # scan does not step over every sample labelled since the last retrain (thousands at 1M samples,
    # where a retrain takes tens of seconds: 23 ms a page). The next version orders everything anew.
    done = [row.sample_id for row in out if row.opinion == "primary" and row.sample_id in shown]
    if done:
        session.execute(
            update(Prediction)
            .where(Prediction.model_version_id == project.current_model_version_id, Prediction.sample_id.in_(done))
            .values(priority=LABELLED_PRIORITY)
            .execution_options(synchronize_session=False)
        )
    if source != "review":
        _open_reviews(session, project, out, samples, shown)
    bump_counts(session, project.id, user.id if user else None, len(out), newly_labelled, newly_audit)
    return out


def _open_reviews(session: Session, project: Project, out: list[Label], samples: dict[int, Sample],
                  shown: dict[int, Prediction]) -> None:
    for row in out:
        if row.opinion == "second" and row.label != samples[row.sample_id].label:
            reviews.open_review(session, project, row, "annotators_disagree",
                                {"current": samples[row.sample_id].label, "second": row.label})
        pred = shown.get(row.sample_id)
        if pred is not None and pred.label and pred.label != row.label and (pred.confidence or 0) >= \
                reviews.confident_threshold(project):
            reviews.open_review(session, project, row, "model_disagrees",
                                {"model": pred.label, "confidence": pred.confidence, "label": row.label})


@dataclass(frozen=True)
class LabelTotals:
    set_labels: int  # label revisions with action "set" (what the retrain trigger counts)
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


def totals(session: Session, project_id: int) -> LabelTotals:
    """The project's counts: a sum over one row per labeller, however many labels and samples."""
    c = LabelCount
    row = session.execute(
        select(func.coalesce(func.sum(c.set_labels), 0), func.coalesce(func.sum(c.labelled), 0),
               func.coalesce(func.sum(c.audit_labelled), 0)).where(c.project_id == project_id)
    ).one()
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
