"""Labelling: append-only revisions, with the sample's current label derived from them.

A sample's first label (and its labeller's own later changes) are "primary" revisions: the newest
live one is the current label. Another annotator's label on an already labelled sample is a "second"
opinion: it is kept, never overwrites the first, and if it disagrees the sample goes to review.
The queries are ``app/repos/labels.py`` (with the rule of what is live), the counters
``app/repos/label_counts.py``; this module holds the rules and never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.models import Label, Project, User
from app.models.base import utcnow
from app.repos import label_counts
from app.repos import labels as label_repo
from app.repos import notes as notes_repo
from app.repos import reviews as review_repo
from app.repos import samples as samples_repo
from app.repos.label_counts import LabelTotals
from app.repos.labels import StoredLabel, Target
from app.services import overlap
from app.services.errors import Conflict, Forbidden, Invalid, NotFound, listed
from app.services.project_settings import effective_settings


@dataclass
class LabelRequest:
    sample_id: int
    label: str
    duration_ms: int | None = None


@dataclass
class Added:
    """What ``add_labels`` stored, and the project's counters after it in this transaction (None when
    it counted nothing new: the counters are then read, ``label_counts.totals``)."""
    labels: list[StoredLabel]
    totals: LabelTotals | None


def derive_current(rows: Sequence[Label]) -> str | None:
    """The newest live primary revision; failing that, the newest live second opinion; None while the
    sample is in doubt (``label_repo.doubted``: marked unsure since, no decision yet)."""
    if label_repo.doubted(rows):
        return None
    live = label_repo.live(rows)
    primary = [r for r in live if r.opinion == "primary"]
    pick = primary or live
    return pick[-1].label if pick else None


def _check(project: Project, requests: Sequence[LabelRequest]) -> list[int]:
    """The requested sample ids, once the labels are the project's classes and no sample comes twice."""
    if not requests:
        raise Invalid("no labels given")
    bad = sorted({r.label for r in requests if r.label not in set(project.classes)})
    if bad:
        raise Invalid(f"{'the label' if len(bad) == 1 else 'the labels'} {listed(bad)} "
                      f"{'is not a class' if len(bad) == 1 else 'are not classes'} of project '{project.name}' "
                      f"(its classes: {listed(project.classes, 20)})")
    ids = [r.sample_id for r in requests]
    if len(set(ids)) != len(ids):
        raise Invalid("a sample appears twice in one request")
    return ids


def _targets(session: Session, project: Project, ids: list[int], new_only: bool, source: str) -> dict[int, Target]:
    targets = label_repo.targets(session, project.id, project.current_model_version_id, ids)
    missing = sorted(set(ids) - targets.keys())
    if missing:
        raise NotFound(f"{'sample' if len(missing) == 1 else 'samples'} {listed(missing)} not found in project "
                       f"{project.id}")
    # A sample marked unsure waits for a reviewer's decision: a label from anywhere else would end the
    # doubt behind the review's back.
    doubted = sorted(sid for sid in ids if targets[sid].status == "unsure") if source != "review" else []
    if doubted:
        one = len(doubted) == 1
        raise Conflict(f"{'sample' if one else 'samples'} {listed(doubted)} {'is' if one else 'are'} marked unsure "
                       f"and {'waits' if one else 'wait'} for a reviewer's decision in the review list; nothing was "
                       "stored (the one who marked a sample may undo the mark first)")
    taken = sorted(sid for sid in ids if targets[sid].label is not None) if new_only else []
    if taken:
        raise Conflict(f"{len(taken)} of these samples were labelled meanwhile (in another tab or by someone "
                       f"else): {listed(taken)}; nothing was stored. Reload the "
                       "grid to see what is left.")
    return targets


@dataclass
class _Batch:
    """The revisions of one call, and what they change."""
    out: list[StoredLabel] = field(default_factory=list)
    # (new label or None for "unchanged", clear the lease) -> sample ids: one UPDATE per group, so a
    # page of labels, or a neighbourhood of one class, costs one statement.
    sample_updates: dict[tuple[str | None, bool], list[int]] = field(default_factory=dict)
    newly_labelled: int = 0
    newly_audit: int = 0
    # Who now awaits a second opinion (None: nobody) -> sample ids (the project's overlap).
    awaiting: dict[int | None, list[int]] = field(default_factory=dict)


def _opinion(t: Target, history: list[Label], uid: int | None) -> str:
    # Someone else's label stands on it: this is a second opinion, kept beside theirs. (Only their
    # primary labels: another's second opinion does not make the labeller's own correction one.)
    others = [x for x in label_repo.live(history) if x.user_id != uid and x.opinion == "primary"]
    return "second" if t.label is not None and others and uid is not None else "primary"


def _revisions(project: Project, user: User | None, requests: Sequence[LabelRequest], targets: dict[int, Target],
               histories: dict[int, list[Label]], source: str, batch_id: str | None) -> _Batch:
    uid = user.id if user else None
    now = utcnow()
    b = _Batch()
    rule = overlap.Rule(project)
    for r in requests:
        t = targets[r.sample_id]
        opinion = _opinion(t, histories.get(r.sample_id, []), uid)
        b.out.append(StoredLabel(
            id=0, project_id=project.id, sample_id=t.id, user_id=uid, label=r.label, source=source, opinion=opinion,
            model_version_id=project.current_model_version_id if t.shown else None,
            suggested_label=t.suggested_label, suggested_confidence=t.suggested_confidence,
            duration_ms=r.duration_ms, batch_id=batch_id, created_at=now,
        ))
        if opinion == "primary" and t.status != "labelled":
            b.newly_labelled += 1
            b.newly_audit += t.is_audit
            # A person's first label of a sample the overlap picks awaits a second opinion from someone else.
            if uid is not None and source == "human" and rule.wants(t.id, r.label):
                b.awaiting.setdefault(uid, []).append(t.id)
        elif opinion == "second":
            b.awaiting.setdefault(None, []).append(t.id)
        clear_lease = t.leased_by is not None and (user is None or t.leased_by == uid)
        if opinion == "primary" or clear_lease:
            b.sample_updates.setdefault((r.label if opinion == "primary" else None, clear_lease), []).append(t.id)
    return b


def add_labels(
    session: Session, project: Project, user: User | None, requests: Sequence[LabelRequest], source: str = "human",
    batch_id: str | None = None, new_only: bool = False,
) -> Added:
    """Validate the whole batch first, so a bad item stores nothing; then append one revision each.

    ``user`` is None only for labels that came with the data (an import's class folders). ``new_only``
    (a teach batch, picked from a grid of unlabelled samples): a sample labelled since the grid was
    loaded, in another tab or by someone else, refuses the whole batch (409), never relabels it."""
    ids = _check(project, requests)
    targets = _targets(session, project, ids, new_only, source)
    # Only a labelled sample can take a second opinion: an unlabelled one (the annotators' usual case)
    # needs no history read.
    histories = label_repo.histories(session, [sid for sid in ids if targets[sid].label is not None])
    b = _revisions(project, user, requests, targets, histories, source, batch_id)
    label_repo.insert_labels(session, b.out)
    label_repo.update_samples(session, b.sample_updates)
    if b.awaiting:
        label_repo.set_awaiting(session, b.awaiting)
    # A labelled sample goes to the end of the current version's queue order.
    done = [x.sample_id for x in b.out if x.opinion == "primary" and targets[x.sample_id].shown]
    if done and project.current_model_version_id is not None:
        label_repo.to_queue_end(session, project.current_model_version_id, done)
    if source != "review":
        _open_reviews(project, b.out, targets, session)
    # New labels for the retrain trigger: primary revisions (first labels and corrections); a second
    # opinion never changes what a model learns from.
    found = label_counts.bump(session, project.id, user.id if user else None,
                              sum(x.opinion == "primary" for x in b.out), b.newly_labelled, b.newly_audit)
    return Added(b.out, found)


def add_imported_labels(session: Session, project_id: int, inserted: Iterable[tuple[int, str]],
                        rows_by_hash: Mapping[str, Mapping[str, Any]]) -> int:
    """The revisions and counters of labels that came with an import, for the samples this transaction
    ``inserted`` ((id, content hash), as ``samples_repo.insert_samples`` returns them) from rows (by content
    hash) with ``status`` 'labelled' and their ``label`` set; rows without a label are passed over. So no
    index and no count is written twice, as an UPDATE after the insert did (docs/benchmarks.md,
    "Eleventh session: text import").

    What ``add_labels(..., user=None, source="import")`` stores for a new sample, exactly: a new
    sample has no history, no lease, no prediction of any model version (so no suggestion shown, no
    review, no queue move), and with no user no overlap awaits a second opinion. Returns how many."""
    now = utcnow()
    rows = [(sid, rows_by_hash[digest]) for sid, digest in inserted if rows_by_hash[digest]["label"] is not None]
    out = [StoredLabel(id=0, project_id=project_id, sample_id=sid, user_id=None, label=row["label"],
                       source="import", opinion="primary", model_version_id=None, suggested_label=None,
                       suggested_confidence=None, duration_ms=None, batch_id=None, created_at=now)
           for sid, row in rows]
    if out:
        label_repo.insert_labels(session, out)
        label_counts.bump(session, project_id, None, len(out), len(out), sum(bool(row["is_audit"]) for _, row in rows))
    return len(out)


def confident_threshold(project: Project) -> float:
    """A label against a model at least this sure of another class opens a review."""
    return float(effective_settings(project.settings)["review_confidence"])


def _open_reviews(project: Project, out: list[StoredLabel], targets: dict[int, Target], session: Session) -> None:
    for row in out:
        current = targets[row.sample_id].label
        if row.opinion == "second" and row.label != current:
            review_repo.add(session, row, "annotators_disagree", {"current": current, "second": row.label})
        if row.suggested_label and row.suggested_label != row.label and (row.suggested_confidence or 0) >= \
                confident_threshold(project):
            review_repo.add(session, row, "model_disagrees",
                            {"model": row.suggested_label, "confidence": row.suggested_confidence, "label": row.label})


def _recompute(session: Session, sample_id: int) -> tuple[int, int]:
    """Re-derive a sample's current label; returns its change to (labelled, labelled audit) counts."""
    sample = samples_repo.get(session, sample_id)
    assert sample is not None
    was = sample.status == "labelled"
    rows = label_repo.history(session, sample_id)
    sample.label = derive_current(rows)
    sample.status = "unsure" if label_repo.doubted(rows) else "labelled" if sample.label is not None else "unlabelled"
    if sample.status == "unsure" and was:
        # A reviewer's decision undone: the doubt it ended is back, and so is its review.
        notes_repo.reopen_unsure_review(session, sample_id)
    # An undone second opinion leaves the first waiting again; an undone first label, nothing to wait on.
    project = session.get(Project, sample.project_id)
    sample.awaiting_second = overlap.awaiting(sample.status, sample.id, sample.label, rows, overlap.Rule(project)) \
        if project is not None else None
    delta = int(sample.status == "labelled") - int(was)
    return delta, delta if sample.is_audit else 0


def _undo_rows(session: Session, targets: Sequence[Label], user: User, batch_id: str | None = None) -> list[Label]:
    rows = label_repo.add_undos(session, targets, user.id, batch_id)
    by_project: dict[int, list[int]] = {}
    for sid, pid in {(t.sample_id, t.project_id) for t in targets}:
        d = _recompute(session, sid)
        acc = by_project.setdefault(pid, [0, 0])
        acc[0] += d[0]
        acc[1] += d[1]
    session.flush()
    for pid, (labelled, audit_labelled) in by_project.items():
        label_counts.bump(session, pid, user.id, 0, labelled, audit_labelled)
    return rows


def label_to_undo(session: Session, label_id: int) -> Label:
    target = label_repo.get(session, label_id)
    if target is None:
        raise NotFound(f"label {label_id} not found")
    return target


def undo_label(session: Session, target: Label, user: User) -> Label:
    """Undo one label (the caller may label in its project): an admin may undo any; an annotator only
    their own newest live label."""
    if target.action == "unsure":
        return _undo_mark(session, target, user)
    if target.action != "set":
        raise Invalid(f"label {target.id} is itself an undo")
    if not label_repo.is_live_id(session, target.id):
        raise Invalid(f"label {target.id} is already undone")
    if not user.is_admin:
        if target.user_id != user.id:
            raise Forbidden("you can only undo your own labels")
        if label_repo.newest_live_of(session, target.project_id, user.id) != target.id:
            raise Forbidden("you can undo only your most recent label (undo that one first)")
    return _undo_rows(session, [target], user)[0]


def _undo_mark(session: Session, mark: Label, user: User) -> Label:
    """Take back an "unsure" mark (its author, or an admin) while its review is open: the review is
    withdrawn and the sample has what it had before the mark (its label, or none)."""
    if notes_repo.is_undone(session, mark.id):
        raise Invalid(f"the unsure mark {mark.id} is already undone")
    if not user.is_admin and mark.user_id != user.id:
        raise Forbidden("you can only undo your own unsure marks")
    reviews = notes_repo.reviews_of_label(session, mark.id)
    decided = [r for r in reviews if r.status == "resolved"]
    if decided:
        raise Invalid(f"sample {mark.sample_id} was decided in review {decided[0].id}; its unsure mark stays in "
                      "the history")
    row = _undo_rows(session, [mark], user)[0]
    now = utcnow()
    for r in reviews:
        r.status, r.resolved_by, r.resolved_at = "withdrawn", user.id, now
    session.flush()
    return row


def batch_to_undo(session: Session, batch_id: str) -> list[tuple[Label, bool]]:
    """A batch's "set" revisions, each with whether it is live."""
    rows = label_repo.batch(session, batch_id)
    if not rows:
        raise NotFound(f"label batch {batch_id} not found")
    return rows


def undo_batch(session: Session, batch_id: str, rows: list[tuple[Label, bool]], user: User) -> list[Label]:
    """Undo every live label of one batch (``batch_to_undo``; a neighbourhood batch) as one action."""
    if not user.is_admin and any(r.user_id != user.id for r, _ in rows):
        raise Forbidden("you can only undo your own labels")
    live = [r for r, alive in rows if alive]
    if not live:
        raise Invalid(f"label batch {batch_id} is already undone")
    return _undo_rows(session, live, user, batch_id=batch_id)


def new_batch_id() -> str:
    return uuid.uuid4().hex


def history_with_names(session: Session, sample_id: int) -> tuple[list[Label], dict[int, str]]:
    """A sample's revisions, oldest first, and their labellers' names by user id."""
    rows = label_repo.history(session, sample_id)
    return rows, label_repo.usernames(session, rows)


# The most ``recent_labels`` lists at once (the label view's strip shows 50).
RECENT_MAX = 200


def recent_labels(session: Session, project: Project, user: User, limit: int) -> list[label_repo.RecentLabel]:
    """The caller's own newest label revisions and unsure marks in ``project``, newest first, each marked
    live or undone: what the label view reopens for correction, and where its undo resumes after a reload."""
    return label_repo.recent_of(session, project.id, user.id, limit)
