"""Queries on samples."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import Sample


def existing_hashes(session: Session, project_id: int, hashes: Sequence[str]) -> set[str]:
    if not hashes:
        return set()
    q = select(Sample.content_hash).where(Sample.project_id == project_id, Sample.content_hash.in_(hashes))
    return set(session.scalars(q))


def insert_samples(session: Session, rows: list[dict]) -> list[tuple[int, str]]:
    """Bulk insert; rows whose content is already in the project are skipped. Returns (id, hash)."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(Sample).on_conflict_do_nothing(index_elements=["project_id", "content_hash"])
    elif dialect == "sqlite":
        stmt = sqlite.insert(Sample).on_conflict_do_nothing(index_elements=["project_id", "content_hash"])
    else:
        stmt = insert(Sample)
    stmt = stmt.returning(Sample.id, Sample.content_hash)
    # insertmanyvalues batches this into a few multi-row INSERTs on both SQLite and PostgreSQL.
    return [(r[0], r[1]) for r in session.execute(stmt, rows).all()]


def counts(session: Session, project_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(sample_count, labelled_count) per project."""
    if not project_ids:
        return {}
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


def get_in_project(session: Session, project_id: int, sample_ids: Sequence[int]) -> dict[int, Sample]:
    if not sample_ids:
        return {}
    q = select(Sample).where(Sample.project_id == project_id, Sample.id.in_(sample_ids))
    return {s.id: s for s in session.scalars(q)}
