"""Queries on samples."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import cast

from sqlalchemy import ColumnElement, Select, Table, func, insert, literal, or_, select, text, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from app.db import after_commit
from app.models import Prediction, Review, Sample, SampleCount
from app.repos import bulk, data_checks, texts

log = logging.getLogger(__name__)


def existing_hashes(session: Session, project_id: int, hashes: Sequence[str]) -> set[str]:
    if not hashes:
        return set()
    q = select(Sample.content_hash).where(Sample.project_id == project_id, Sample.content_hash.in_(hashes))
    return set(session.scalars(q))


def hashes_in_use(session: Session, hashes: Sequence[str]) -> set[str]:
    """Those of ``hashes`` a sample of any project has: stored files are shared by content. No index
    serves it (the unique one leads with the project): only a failed import batch asks."""
    if not hashes:
        return set()
    return set(session.scalars(select(Sample.content_hash).where(Sample.content_hash.in_(hashes)).distinct()))


def insert_samples(session: Session, rows: list[dict]) -> list[tuple[int, str]]:
    """Bulk insert; rows whose content is already in the project are skipped. Returns (id, hash)."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    stmt: Insert
    if dialect == "postgresql":
        # One statement a batch, its columns as arrays (app/repos/bulk.py: no placeholder a value).
        return [(r[0], r[1]) for r in bulk.array_insert(session, cast(Table, Sample.__table__), rows,
                                                        conflict=("project_id", "content_hash"),
                                                        returning=("id", "content_hash"))]
    if dialect == "sqlite":
        stmt = sqlite.insert(Sample).on_conflict_do_nothing(index_elements=["project_id", "content_hash"])
    else:
        stmt = insert(Sample)
    # insertmanyvalues batches this into a few multi-row INSERTs.
    return [(r[0], r[1]) for r in session.execute(stmt.returning(Sample.id, Sample.content_hash), rows).all()]


def analyze_after_big_import(session: Session, added: int) -> None:
    """Refresh PostgreSQL's statistics of ``samples`` once an import that grew it by a tenth or more
    has committed.

    The queue's statements are planned from those statistics, and autovacuum refreshes them only a
    minute or more after a big import. Until then the planner guesses, and it guessed wrong: the
    held-items query walked the whole pool's (project, status, rand_key) index instead of the
    leased-by index, 2-8 ms a page at 10k samples, the slowest step of a queue call under load."""
    if added <= 0 or session.get_bind().dialect.name != "postgresql":
        return
    estimated = session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = 'samples'::regclass"))
    if estimated is not None and estimated >= 0 and added < 0.1 * estimated:
        return
    engine = session.get_bind().engine

    def analyze() -> None:
        try:
            with engine.connect() as conn:
                # Never keep an import's answer waiting behind a VACUUM: the statistics can wait.
                conn.exec_driver_sql("SET lock_timeout = '2s'")
                conn.exec_driver_sql("ANALYZE samples")
                conn.commit()
        except DBAPIError as exc:
            log.warning("ANALYZE samples after an import failed (autovacuum will do it): %s", exc)

    after_commit(session, analyze)


def counts(session: Session, project_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(sample_count, labelled_count) per project, samples taken out of the pool left out (issue 18).

    On PostgreSQL a sum over the deltas that triggers append to ``sample_counts`` (migration 0005): a
    few rows, however large the pool. Elsewhere a count over the project's samples. Either way the
    excluded ones are subtracted, counted from the few exclusion rows."""
    if not project_ids:
        return {}
    out = _all_counts(session, project_ids)
    for pid, (n, lab) in data_checks.excluded_counts(session, project_ids).items():
        total, labelled = out.get(pid, (0, 0))
        out[pid] = (max(0, total - n), max(0, labelled - lab))
    return out


def _all_counts(session: Session, project_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    if session.get_bind().dialect.name == "postgresql":
        q = (
            select(SampleCount.project_id, func.sum(SampleCount.total), func.sum(SampleCount.labelled))
            .where(SampleCount.project_id.in_(project_ids))
            .group_by(SampleCount.project_id)
        )
        return {pid: (int(total), int(labelled)) for pid, total, labelled in session.execute(q)}
    q = (
        select(
            Sample.project_id,
            func.count(),
            func.count().filter(Sample.status == "labelled"),
        )
        .where(Sample.project_id.in_(project_ids))
        .group_by(Sample.project_id)
    )
    return {pid: (total, labelled) for pid, total, labelled in session.execute(q)}


def compact_counts(session: Session, project_id: int) -> None:
    """Fold a project's count deltas into one row (PostgreSQL; the train job calls this now and then).

    One statement: deltas appended meanwhile are not in the DELETE's snapshot and stay as they are."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text(
            "WITH d AS (DELETE FROM sample_counts WHERE project_id = :p RETURNING total, labelled) "
            "INSERT INTO sample_counts (project_id, total, labelled) "
            "SELECT :p, sum(total), sum(labelled) FROM d HAVING count(*) > 1"
        ),
        {"p": project_id},
    )


def get(session: Session, sample_id: int) -> Sample | None:
    return session.get(Sample, sample_id)


def by_ids(session: Session, sample_ids: Sequence[int]) -> dict[int, Sample]:
    return {s.id: s for s in session.scalars(select(Sample).where(Sample.id.in_(sample_ids)))} if sample_ids else {}


def ids_in_project(session: Session, project_id: int, sample_ids: Sequence[int]) -> set[int]:
    """Those of ``sample_ids`` that are the project's."""
    return set(session.scalars(select(Sample.id).where(Sample.id.in_(sample_ids), Sample.project_id == project_id)))


def class_balance(session: Session, project_id: int) -> dict[str, int]:
    """Labelled samples per current label (those taken out of the pool left out)."""
    q = (select(Sample.label, func.count())
         .where(Sample.project_id == project_id, Sample.status == "labelled", data_checks.in_pool(Sample.id))
         .group_by(Sample.label))
    return {label: int(n) for label, n in session.execute(q).all() if label is not None}


def not_offered_ids(session: Session, project_id: int, *, labelled: bool) -> set[int]:
    """The samples the teach view never offers: those taken out of the pool (labelling one would count
    nowhere) and, with ``labelled``, the labelled ones."""
    q = select(Sample.id).where(Sample.project_id == project_id,
                                ~data_checks.in_pool(Sample.id) | (Sample.status == "labelled") if labelled
                                else ~data_checks.in_pool(Sample.id))
    return set(session.scalars(q))


def offered_among(session: Session, sample_ids: Sequence[int]) -> set[int]:
    """Those of ``sample_ids`` still unlabelled and in the pool: what the teach view may offer."""
    return set(session.scalars(select(Sample.id).where(Sample.id.in_(sample_ids), Sample.status == "unlabelled",
                                                       data_checks.in_pool(Sample.id))))


# ---------------------------------------------------------------- the sample browser

BROWSE_SORTS = ("created", "-created", "confidence", "-confidence", "score")


@dataclass(frozen=True)
class Filters:
    """The browser's filters, as the API names them (the route checks types and ranges, the service
    checks them against the project); None: no filter."""
    status: str | None = None  # unlabelled | labelled | unsure (marked, awaiting a decision) | in_review
    label: str | None = None
    suggested: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    q: str | None = None
    audit: bool | None = None
    folder: str | None = None
    disagreement: str | None = None  # annotators | model


@dataclass(frozen=True, kw_only=True)
class Browse(Filters):
    """What a page of the sample browser asks for: filters, an order, and where the last page ended.

    ``after`` is the keyset of the last row shown: ``(id,)`` for the orders by creation, ``(value, id)``
    for those by the current model's confidence or score. ``among`` restricts the page to those ids (the
    samples nearest a chosen one: their order is the caller's, not SQL's). ``blind_for``: the user who
    must not learn a first label that awaits their possible second opinion (``overlap.blind_for``): the
    filters on the label leave those samples out (the caller masks the label itself)."""
    project_id: int
    model_version_id: int | None
    limit: int
    sort: str = "created"
    after: tuple | None = None
    among: Sequence[int] | None = None
    blind_for: int | None = None
    words: bool = False  # ``q`` matches the document's words (a text project; migration 0020), not file names
    word_ids: Sequence[int] | None = None  # ``q``'s matches already read off the word index (``browse``)


def filters_of(f: Filters) -> dict:
    """``f``'s filter fields by name: what a ``Browse`` takes from a query that is a ``Filters``."""
    return {x.name: getattr(f, x.name) for x in fields(Filters)}


@dataclass(frozen=True)
class BrowseRow:
    sample: Sample
    suggested_label: str | None
    confidence: float | None
    score: float | None


def _needs_prediction(b: Browse) -> bool:
    """Whether a row without a prediction of the current version can never match (an inner join)."""
    return (b.sort in ("confidence", "-confidence", "score") or b.suggested is not None
            or b.min_confidence is not None or b.max_confidence is not None or b.disagreement == "model")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _status_is(status: str) -> ColumnElement[bool]:
    """``status`` written into the SQL, not bound: psycopg prepares a statement after its fifth run on a
    connection, and PostgreSQL's generic plan for a bound status plans for half the pool. For
    ``disagreement=model`` (1 % labelled) that plan walked the primary key merge-joined with the version's
    every prediction, 0.6-2 s a page at 1M, where the status index's walk takes 3-12 ms (docs/benchmarks.md).
    A handful of statuses: as many prepared statements, each planned for its own."""
    return Sample.status == literal(status, literal_execute=True)


def _filters(b: Browse) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if b.status in ("unlabelled", "labelled", "unsure"):
        out.append(_status_is(b.status))
    elif b.status == "in_review":
        out.append(Sample.id.in_(select(Review.sample_id).where(Review.project_id == b.project_id,
                                                                Review.status == "open")))
    if b.label is not None:
        out.append(Sample.label == b.label)
    if b.suggested is not None:
        out.append(Prediction.label == b.suggested)
    # Ordered by confidence, a range is a stretch of the confidence index. In another order a range is a
    # filter on the walk of that order: "+ 0" keeps the planner off the confidence index, whose range it
    # would read whole and sort (SQLite: 1.2 s a page at 200k samples, not 10 ms).
    conf = Prediction.confidence if b.sort in ("confidence", "-confidence") else Prediction.confidence + 0
    if b.min_confidence is not None:
        out.append(conf >= b.min_confidence)
    if b.max_confidence is not None:
        out.append(conf <= b.max_confidence)
    if b.q and b.words:
        out.append(texts.with_words(b.q) if b.word_ids is None else Sample.id.in_(list(b.word_ids)))
    elif b.q:
        out.append(Sample.filename.ilike(f"%{_like_escape(b.q)}%", escape="\\"))
    if b.audit is not None:
        out.append(Sample.is_audit.is_(b.audit))
    if b.folder is not None:
        out.append(Sample.source_folder == b.folder)
    if b.disagreement == "annotators":
        out.append(Sample.id.in_(select(Review.sample_id).where(Review.project_id == b.project_id,
                                                                Review.reason == "annotators_disagree")))
    elif b.disagreement == "model":
        out.append(_status_is("labelled") & (Prediction.label.is_not(None))
                   & (Prediction.label != Sample.label))
    if b.blind_for is not None and (b.label is not None or b.disagreement == "model"):
        # A label another annotator's second opinion still awaits is not told by a filter on it either.
        out.append(or_(Sample.awaiting_second.is_(None), Sample.awaiting_second == b.blind_for))
    if b.among is not None:
        out.append(Sample.id.in_(list(b.among)))
    return out


def _order(b: Browse) -> tuple[list[ColumnElement[bool]], list]:
    """The keyset condition after ``b.after`` and the ORDER BY of ``b.sort``."""
    if b.sort in ("created", "-created"):
        sid = Sample.id
        asc = b.sort == "created"
        after = [] if b.after is None else [sid > b.after[-1] if asc else sid < b.after[-1]]
        return after, [sid if asc else sid.desc()]
    col = Prediction.confidence if b.sort in ("confidence", "-confidence") else Prediction.score
    asc = b.sort == "confidence"  # least sure first; "-confidence" most sure first; "score" highest first
    cond: list[ColumnElement[bool]] = [col.is_not(None)]
    if b.after is not None:
        key, last = tuple_(col, Prediction.sample_id), tuple_(literal(b.after[0]), literal(b.after[1]))
        cond.append(key > last if asc else key < last)
    return cond, ([col, Prediction.sample_id] if asc else [col.desc(), Prediction.sample_id.desc()])


def browse(session: Session, b: Browse) -> list[BrowseRow]:
    """Up to ``b.limit`` samples of the project that pass the filters, in ``b.sort`` order, after
    ``b.after``: a keyset page (no OFFSET, no count), each order read off an index (schema 0014).

    Orders by confidence or score walk the current model version's predictions index and list only the
    samples it scored (confidence: those with a suggestion, so none before the first label)."""
    if _needs_prediction(b) and b.model_version_id is None:
        return []
    if b.q and b.words and b.among is None and (found := _browse_by_words(session, b)) is not None:
        return found
    return _rows(session, b)


def _rows(session: Session, b: Browse) -> list[BrowseRow]:
    return [BrowseRow(s, lab, conf, score) for s, lab, conf, score in session.execute(browse_statement(b))]


# A word search in id order reads the word index's matches a chunk at a time, in that order, and looks
# those samples up by id: a page costs a chunk or a few, never a walk of the project (a word in one
# document of a million took 0.3 s that way). Past WORD_CHUNKS chunks (the other filters pass few of the
# matches) the one statement goes on from the last id read.
WORD_CHUNK = 2000
WORD_CHUNKS = 8
# Ordered by confidence or score (and on PostgreSQL, whose GIN index has no cheap "first ids in order"),
# a word in at most this many documents is looked up the same way, all its matches at once.
RARE_WORDS = 2000


def _browse_by_words(session: Session, b: Browse) -> list[BrowseRow] | None:
    """``browse`` of a word search driven by the word index's ids (SQLite's FTS5 in rowid order; a rare
    word's every match on PostgreSQL and in the orders by the model); None where it does not apply (a
    common word on PostgreSQL or in an order by the model)."""
    assert b.q is not None
    if b.sort not in ("created", "-created") or session.get_bind().dialect.name != "sqlite":
        ids = texts.few_matches(session, b.q, RARE_WORDS)
        return None if ids is None else _rows(session, replace(b, word_ids=ids))
    out: list[BrowseRow] = []
    last = b.after[-1] if b.after else None
    for _ in range(WORD_CHUNKS):
        ids = texts.matching_ids(session, b.q, after=last, descending=b.sort == "-created", limit=WORD_CHUNK)
        if ids is None:
            return None
        if ids:
            out += _rows(session, replace(b, word_ids=ids, limit=b.limit - len(out)))
        if len(out) >= b.limit or len(ids) < WORD_CHUNK:
            return out
        last = ids[-1]
    return out + _rows(session, replace(b, after=(last,), limit=b.limit - len(out)))


def browse_statement(b: Browse) -> Select:
    """``browse``'s one statement (bench/scale_browser.py shows its plans)."""
    cols = (Sample, Prediction.label, Prediction.confidence, Prediction.score)
    on = (Prediction.sample_id == Sample.id) & (Prediction.model_version_id == b.model_version_id)
    if b.sort in ("confidence", "-confidence", "score"):
        # From the predictions of the version (one project's by construction), each joined to its sample.
        q = (select(*cols).select_from(Prediction).join(Sample, Sample.id == Prediction.sample_id)
             .where(Prediction.model_version_id == b.model_version_id))
    else:
        # From the samples in id order (or a status's, a label's, a folder's index: the model-disagreement
        # filter walks the labelled ones only), each prediction by its key. Before any model the outer
        # join finds nothing (no version is NULL).
        q = select(*cols).select_from(Sample)
        q = q.join(Prediction, on) if _needs_prediction(b) else q.outerjoin(Prediction, on)
        q = q.where(Sample.project_id == b.project_id)
    after, order = _order(b)
    q = q.where(*_filters(b), *after).order_by(*order)
    # The page size written in too: a generic plan assumes a bound LIMIT takes a tenth of the rows, and
    # for 10,000 rows it planned parallel workers (Gather Merge) for the orders by score, confidence and
    # some filters, two processes started for a page of 101 rows.
    return q.limit(literal(b.limit, literal_execute=True)) if b.among is None else q


def open_review_ids(session: Session, sample_ids: Sequence[int]) -> set[int]:
    """Those of ``sample_ids`` with an open review."""
    if not sample_ids:
        return set()
    return set(session.scalars(select(Review.sample_id).where(Review.sample_id.in_(sample_ids),
                                                              Review.status == "open")))
