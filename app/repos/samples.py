"""Queries on samples."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from app.db import after_commit
from app.models import Sample, SampleCount

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
        stmt = postgresql.insert(Sample).on_conflict_do_nothing(index_elements=["project_id", "content_hash"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(Sample).on_conflict_do_nothing(index_elements=["project_id", "content_hash"])
    else:
        stmt = insert(Sample)
    # insertmanyvalues batches this into a few multi-row INSERTs on both SQLite and PostgreSQL.
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
    """(sample_count, labelled_count) per project.

    On PostgreSQL a sum over the deltas that triggers append to ``sample_counts`` (migration 0005): a
    few rows, however large the pool. Elsewhere a count over the project's samples."""
    if not project_ids:
        return {}
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


def page(session: Session, project_id: int, after_id: int, limit: int, status: str | None = None,
         label: str | None = None) -> list[Sample]:
    """Up to ``limit`` of the project's samples with ids above ``after_id``, in id order."""
    q = select(Sample).where(Sample.project_id == project_id, Sample.id > after_id)
    if status:
        q = q.where(Sample.status == status)
    if label is not None:
        q = q.where(Sample.label == label)
    return list(session.scalars(q.order_by(Sample.id).limit(limit)))


def by_ids(session: Session, sample_ids: Sequence[int]) -> dict[int, Sample]:
    return {s.id: s for s in session.scalars(select(Sample).where(Sample.id.in_(sample_ids)))} if sample_ids else {}


def ids_in_project(session: Session, project_id: int, sample_ids: Sequence[int]) -> set[int]:
    """Those of ``sample_ids`` that are the project's."""
    return set(session.scalars(select(Sample.id).where(Sample.id.in_(sample_ids), Sample.project_id == project_id)))


def class_balance(session: Session, project_id: int) -> dict[str, int]:
    """Labelled samples per current label."""
    q = (select(Sample.label, func.count())
         .where(Sample.project_id == project_id, Sample.status == "labelled").group_by(Sample.label))
    return {label: int(n) for label, n in session.execute(q).all() if label is not None}


def labelled_ids(session: Session, project_id: int) -> set[int]:
    return set(session.scalars(select(Sample.id).where(Sample.project_id == project_id, Sample.status == "labelled")))


def unlabelled_among(session: Session, sample_ids: Sequence[int]) -> set[int]:
    return set(session.scalars(select(Sample.id).where(Sample.id.in_(sample_ids), Sample.status == "unlabelled")))
