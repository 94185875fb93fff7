"""Queries on label revisions: the label call's statements, histories, undo lookups, the live rule.

A revision is *live* while it is a "set" that no undo revision points at (``live`` in Python over a
loaded history, ``is_live`` in SQL): the one home of that rule, and of its companion ``doubted`` (an
"unsure" mark holds a sample's label back until a reviewer decides). The sample's current label is derived
from its live revisions (``app/services/labels.py``) and kept on the sample row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import BindParameter, ColumnElement, Subquery, Table, bindparam, exists, func, insert, select, update
from sqlalchemy.orm import Session, aliased

from app.models import Label, Prediction, Review, Sample, User
from app.repos import bulk, data_checks

# Queue order of a sample labelled since its model version: after every other (see ``to_queue_end``).
LABELLED_PRIORITY = -1e18


def live(rows: Sequence[Label]) -> list[Label]:
    """The live revisions of a history (all rows of the samples concerned, oldest first)."""
    undone = {r.undoes_id for r in rows if r.action == "undo"}
    return [r for r in rows if r.action == "set" and r.id not in undone]


def doubted(rows: Sequence[Label]) -> bool:
    """Whether a sample's history (all its rows, oldest first) ends in doubt: the newest of its live
    primary labels and live "unsure" marks is a mark. A reviewer's decision (a primary label) ends the
    doubt; an undone mark never began it; a second opinion does not count."""
    undone = {r.undoes_id for r in rows if r.action == "undo"}
    last = None
    for r in rows:
        if r.id not in undone and (r.action == "unsure" or (r.action == "set" and r.opinion == "primary")):
            last = r.action
    return last == "unsure"


def is_live(label: type[Label] = Label) -> ColumnElement[bool]:
    """``live`` as a SQL condition on ``label`` (an undo has its target's sample: the sample's index
    finds it)."""
    undo = aliased(Label)
    return (label.action == "set") & ~exists().where(undo.sample_id == label.sample_id, undo.undoes_id == label.id)


@dataclass(frozen=True)
class Target:
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
    object: the hot path writes it with one INSERT, not through the unit of work)."""
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
_SAMPLES, _PREDS, _L = cast(Table, Sample.__table__), cast(Table, Prediction.__table__), cast(Table, Label.__table__)
_S, _P = _SAMPLES.c, _PREDS.c
_TARGET_COLS = (_S.id, _S.label, _S.status, _S.is_audit, _S.leased_by)
_IN_PROJECT = (_S.project_id == bindparam("pid"), _S.id.in_(bindparam("ids", expanding=True)))
# Locked in id order, so two requests labelling overlapping samples cannot deadlock.
_TARGETS = select(*_TARGET_COLS).where(*_IN_PROJECT).order_by(_S.id).with_for_update(of=_SAMPLES)
_TARGETS_SHOWN = (
    select(*_TARGET_COLS, _P.sample_id, _P.label, _P.confidence)
    .outerjoin(_PREDS, (_P.sample_id == _S.id) & (_P.model_version_id == bindparam("mv")))
    .where(*_IN_PROJECT).order_by(_S.id).with_for_update(of=_SAMPLES)
)
_INSERT_LABELS = insert(_L).returning(_L.c.id, sort_by_parameter_order=True)
_INSERT_LABELS_ANY_ORDER = insert(_L).returning(_L.c.sample_id, _L.c.id)
_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_SET_LABEL = update(_SAMPLES).where(_S.id.in_(_IDS)).values(label=bindparam("label"), status="labelled")
_SET_LABEL_FREE = _SET_LABEL.values(leased_by=None, lease_expires_at=None)
_FREE = update(_SAMPLES).where(_S.id.in_(_IDS)).values(leased_by=None, lease_expires_at=None)
_AWAIT = update(_SAMPLES).where(_S.id.in_(_IDS)).values(awaiting_second=bindparam("who"))
_TO_QUEUE_END = (update(_PREDS)
                 .where(_P.model_version_id == bindparam("mv"), _P.sample_id.in_(_IDS))
                 .values(priority=LABELLED_PRIORITY))


def targets(session: Session, project_id: int, model_version_id: int | None,
            sample_ids: Sequence[int]) -> dict[int, Target]:
    """The samples and their predictions of ``model_version_id`` in one query, the samples locked.

    The lock (PostgreSQL; SQLite's write lock is the whole database) makes two labels of one sample at
    once take turns: the second sees the first's label and becomes a second opinion, and the counters
    count the sample once."""
    params = {"pid": project_id, "ids": list(sample_ids)}
    out = {}
    if model_version_id is None:
        for r in session.execute(_TARGETS, params):
            out[r[0]] = Target(r[0], r[1], r[2], bool(r[3]), r[4], False, None, None)
    else:
        for p in session.execute(_TARGETS_SHOWN, params | {"mv": model_version_id}):
            out[p[0]] = Target(p[0], p[1], p[2], bool(p[3]), p[4], p[5] is not None, p[6], p[7])
    return out


def insert_labels(session: Session, stored: list[StoredLabel]) -> None:
    """One INSERT for all of them; each gets the id it was given."""
    # The stored fields, less the id the INSERT gives, plus what the answer does not show.
    rows = [{k: v for k, v in vars(x).items() if k != "id"} | {"undoes_id": None} for x in stored]
    if len(rows) > 1 and session.get_bind().dialect.name == "postgresql":
        # An import's thousands of labels: one placeholder a column (app/repos/bulk.py), not one a value.
        new_ids = [r[0] for r in bulk.array_insert(session, _L, rows, returning=("id",), ordered=True)]
    elif len(rows) > 1 and len({x.sample_id for x in stored}) == len(stored):
        # Each id found by its sample: multi-row INSERTs. Asked for in the rows' order, SQLite's
        # RETURNING promises none, so SQLAlchemy sends one INSERT a row (an import: 100,000 statements).
        by_sample: dict[int, int] = dict(session.execute(_INSERT_LABELS_ANY_ORDER, rows).tuples().all())
        new_ids = [by_sample[x.sample_id] for x in stored]
    else:
        new_ids = list(session.scalars(_INSERT_LABELS, rows))
    for x, new_id in zip(stored, new_ids, strict=True):
        x.id = new_id


def update_samples(session: Session, updates: dict[tuple[str | None, bool], list[int]]) -> None:
    """(new current label or None for "unchanged", clear the lease) -> sample ids: one UPDATE each."""
    for (label, clear_lease), sids in updates.items():
        if label is None:
            session.execute(_FREE, {"ids": sids})
        else:
            session.execute(_SET_LABEL_FREE if clear_lease else _SET_LABEL, {"ids": sids, "label": label})


def set_awaiting(session: Session, updates: dict[int | None, list[int]]) -> None:
    """Who awaits a second opinion (None: nobody) -> sample ids: one UPDATE each (in slices, for an
    overlap change over a large project)."""
    for who, sids in updates.items():
        for i in range(0, len(sids), 10_000):
            session.execute(_AWAIT, {"ids": sids[i:i + 10_000], "who": who})


def to_queue_end(session: Session, model_version_id: int, sample_ids: list[int]) -> None:
    """Move labelled samples to the end of a model version's queue order.

    The queue's index scan then does not step over every sample labelled since the last retrain
    (thousands at 1M samples, where a retrain takes tens of seconds: 23 ms a page). The next
    version orders everything anew."""
    session.execute(_TO_QUEUE_END, {"mv": model_version_id, "ids": sample_ids})


def histories(session: Session, sample_ids: Sequence[int]) -> dict[int, list[Label]]:
    out: dict[int, list[Label]] = {sid: [] for sid in sample_ids}
    if sample_ids:
        for row in session.scalars(select(Label).where(Label.sample_id.in_(sample_ids)).order_by(Label.id)):
            out[row.sample_id].append(row)
    return out


def history(session: Session, sample_id: int) -> list[Label]:
    return histories(session, [sample_id])[sample_id]


def get(session: Session, label_id: int) -> Label | None:
    return session.get(Label, label_id)


def is_live_id(session: Session, label_id: int) -> bool:
    return session.scalar(select(Label.id).where(Label.id == label_id, is_live())) is not None


def newest_live_of(session: Session, project_id: int, user_id: int) -> int | None:
    """The id of ``user_id``'s newest live label in the project."""
    return session.scalar(select(Label.id).where(Label.project_id == project_id, Label.user_id == user_id, is_live())
                          .order_by(Label.id.desc()).limit(1))


@dataclass(frozen=True)
class RecentLabel:
    """One of a labeller's "set" revisions or "unsure" marks, with whether it is live (a mark: not undone
    and its review still open, so it can be taken back) and the sample it labels (what the label view
    needs to show the sample again for a correction, without asking once more)."""
    label_id: int
    sample_id: int
    label: str | None
    opinion: str
    live: bool
    created_at: datetime
    current_label: str | None  # the sample's label now (a correction or another's undo may have changed it)
    filename: str
    width: int
    height: int
    action: str = "set"  # set | unsure


def _open_mark() -> ColumnElement[bool]:
    """An "unsure" mark that can still be taken back: not undone, its review open (not yet decided)."""
    undo = aliased(Label)
    return ((Label.action == "unsure") & ~exists().where(undo.sample_id == Label.sample_id, undo.undoes_id == Label.id)
            & exists().where(Review.label_id == Label.id, Review.status == "open"))


def recent_of(session: Session, project_id: int, user_id: int, limit: int) -> list[RecentLabel]:
    """``user_id``'s newest ``limit`` "set" revisions and "unsure" marks in the project, newest first,
    undone ones included (marked not live): one query, the newest rows by id as ``newest_live_of`` finds
    them. The marks are there for the label view's undo after a reload (Backspace takes back a mark as
    it takes back a label)."""
    rows = session.execute(
        select(Label.id, Label.sample_id, Label.label, Label.opinion, (is_live() | _open_mark()).label("live"),
               Label.created_at, Sample.label, Sample.filename, Sample.width, Sample.height, Label.action)
        .join(Sample, Sample.id == Label.sample_id)
        .where(Label.project_id == project_id, Label.user_id == user_id, Label.action.in_(("set", "unsure")))
        .order_by(Label.id.desc()).limit(limit))
    return [RecentLabel(r[0], r[1], r[2], r[3], bool(r[4]), r[5], r[6], r[7], r[8], r[9], r[10]) for r in rows]


def batch(session: Session, batch_id: str) -> list[tuple[Label, bool]]:
    """A batch's "set" revisions, each with whether it is live."""
    rows = session.execute(select(Label, is_live().label("live"))
                           .where(Label.batch_id == batch_id, Label.action == "set").order_by(Label.id))
    return [(lab, bool(alive)) for lab, alive in rows]


def add_undos(session: Session, targets: Sequence[Label], user_id: int, batch_id: str | None) -> list[Label]:
    rows = [Label(project_id=t.project_id, sample_id=t.sample_id, user_id=user_id, action="undo", label=None,
                  undoes_id=t.id, source=t.source, opinion=t.opinion, batch_id=batch_id) for t in targets]
    session.add_all(rows)
    session.flush()
    return rows


def live_opinions(session: Session, sample_id: int) -> list[tuple[Label, str | None]]:
    """A sample's live revisions, each with its labeller's name, oldest first."""
    return [(lab, name) for lab, name in session.execute(
        select(Label, User.username).outerjoin(User, User.id == Label.user_id)
        .where(Label.sample_id == sample_id, is_live()).order_by(Label.id))]


def usernames(session: Session, rows: Sequence[Label | StoredLabel]) -> dict[int, str]:
    ids = {r.user_id for r in rows if r.user_id}
    return dict(session.execute(select(User.id, User.username).where(User.id.in_(ids))).all()) if ids else {}


def newest_actions(session: Session, project_id: int, limit: int) -> list[tuple]:
    """The newest ``limit`` revisions: (id, action, batch_id, sample_id, label, created_at, username)."""
    return [tuple(r) for r in session.execute(
        select(Label.id, Label.action, Label.batch_id, Label.sample_id, Label.label, Label.created_at, User.username)
        .outerjoin(User, User.id == Label.user_id).where(Label.project_id == project_id)
        .order_by(Label.id.desc()).limit(limit))]


def batch_sizes(session: Session, batch_ids: set[str]) -> dict[tuple[str | None, str], int]:
    """(batch id, action) -> revisions."""
    return {(b, act): int(n) for b, act, n in session.execute(
        select(Label.batch_id, Label.action, func.count()).where(Label.batch_id.in_(batch_ids))
        .group_by(Label.batch_id, Label.action))}


def per_labeller(session: Session, project_id: int) -> list[tuple]:
    """(username, labels, undos, first at, last at) per labeller; a batch's undo is one undo."""
    undo = Label.action == "undo"
    return [tuple(r) for r in session.execute(
        select(User.username, func.count().filter(Label.action == "set"),
               func.count().filter(undo, Label.batch_id.is_(None))
               + func.count(func.distinct(Label.batch_id)).filter(undo),
               func.min(Label.created_at), func.max(Label.created_at))
        .join(User, User.id == Label.user_id).where(Label.project_id == project_id).group_by(User.username)
        .order_by(User.username))]


def current_revisions(project_id: int) -> Subquery:
    """(sample_id, lid): the revision that gives each labelled sample its label, by the rule of
    ``app/services/labels.derive_current`` in SQL (the newest live first opinion, failing that the newest
    live second opinion): the one home of "who labelled this" for the export and the counts."""
    live_primary = func.max(Label.id).filter(Label.opinion == "primary")
    return (select(Label.sample_id, func.coalesce(live_primary, func.max(Label.id)).label("lid"))
            .where(Label.project_id == project_id, is_live()).group_by(Label.sample_id).subquery())


def human_label_count(session: Session, project_id: int) -> int:
    """Labelled samples whose current label a person gave (not an import's folder), counted as the
    export counts them: by the revision that gives the sample its label. Samples taken out of the pool
    are left out, as from every figure."""
    current = current_revisions(project_id)
    return int(session.scalar(
        select(func.count()).select_from(Sample).join(current, current.c.sample_id == Sample.id)
        .join(Label, Label.id == current.c.lid)
        .where(Sample.project_id == project_id, Sample.status == "labelled", Label.source != "import",
               data_checks.in_pool(Sample.id))
    ) or 0)
