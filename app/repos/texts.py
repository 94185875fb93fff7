"""The documents of text projects' samples (``sample_texts``; app/models/sample_text.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import BindParameter, Boolean, ColumnElement, bindparam, false, func, insert, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session

from app.models import Sample, SampleText
from app.repos import bulk


def insert_texts(session: Session, rows: list[dict]) -> None:
    """Bulk insert ``{"sample_id", "project_id", "text"}`` rows, in the caller's transaction (the one
    that inserted their samples)."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        bulk.copy_rows(session, "sample_texts", ("sample_id", "project_id", "text"),
                       ((r["sample_id"], r["project_id"], r["text"]) for r in rows))
    else:
        session.execute(insert(SampleText), rows)


def text_of(session: Session, sample_id: int) -> str | None:
    return session.scalar(select(SampleText.text).where(SampleText.sample_id == sample_id))


def heads(session: Session, sample_ids: Sequence[int], chars: int) -> dict[int, str]:
    """The first ``chars`` characters of each sample's document, by sample id (samples without one are
    left out)."""
    if not sample_ids:
        return {}
    q = select(SampleText.sample_id, func.substr(SampleText.text, 1, chars)).where(
        SampleText.sample_id.in_(list(sample_ids)))
    return {sid: t for sid, t in session.execute(q).tuples()}


def heads_in_project(session: Session, project_id: int, sample_ids: Sequence[int], chars: int) -> dict[int, str]:
    """``heads`` of those of ``sample_ids`` in the project (by primary key: as many rows as ids)."""
    if not sample_ids:
        return {}
    q = select(SampleText.sample_id, func.substr(SampleText.text, 1, chars)).where(
        SampleText.sample_id.in_(list(sample_ids)), SampleText.project_id == project_id)
    return {sid: t for sid, t in session.execute(q).tuples()}


def project_texts(session: Session, project_id: int) -> tuple[list[int], list[str]]:
    """Every document of the project with its sample id, by id (what the embed job reads)."""
    rows = session.execute(select(SampleText.sample_id, SampleText.text).join(Sample, Sample.id == SampleText.sample_id)
                           .where(Sample.project_id == project_id).order_by(SampleText.sample_id)).tuples().all()
    return [r[0] for r in rows], [r[1] for r in rows]


# SQLite's FTS5 table over the documents and its shadow tables (migration 0020) begin with this: the
# database's own index, rebuilt by its triggers as rows arrive, so a backup neither dumps nor loads it and
# the models do not declare it.
WORD_INDEX_PREFIX = "sample_texts_fts"
_WORD = re.compile(r"\w+")


def is_word_index(name: str) -> bool:
    return name.startswith(WORD_INDEX_PREFIX) or name == "ix_sample_texts_words"


class _WithWords(ColumnElement[bool]):
    """``samples.id`` is one of the documents holding every word of the query: an index lookup
    (PostgreSQL's GIN on ``to_tsvector('simple', text)``, SQLite's FTS5 table), its cost the number of
    documents that match, never the pool's size. Compiled per dialect below."""

    inherit_cache = False
    type = Boolean()

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.param: BindParameter[str] = bindparam(None, _fts_query(words), unique=True)
        self.plain: BindParameter[str] = bindparam(None, " ".join(words), unique=True)


@compiles(_WithWords, "postgresql")
def _pg_words(element: _WithWords, compiler: Any, **kw: Any) -> str:
    return ("samples.id IN (SELECT sample_texts.sample_id FROM sample_texts WHERE to_tsvector('simple', "
            f"sample_texts.text) @@ plainto_tsquery('simple', {compiler.process(element.plain, **kw)}))")


@compiles(_WithWords)
def _sqlite_words(element: _WithWords, compiler: Any, **kw: Any) -> str:
    return (f"samples.id IN (SELECT rowid FROM {WORD_INDEX_PREFIX} WHERE {WORD_INDEX_PREFIX} MATCH "
            f"{compiler.process(element.param, **kw)})")


def with_words(q: str) -> ColumnElement[bool]:
    """The sample browser's ``q`` on a text project: documents holding every word of ``q`` (case and
    accents folded, whole words; none when ``q`` has no word)."""
    words = _words_of(q)
    return _WithWords(words) if words else false()


def _words_of(q: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(q)][:20]


def _fts_query(words: list[str]) -> str:
    """FTS5's query language: each word quoted (a literal, not an operator), side by side meaning AND."""
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def matching_ids(session: Session, q: str, *, after: int | None, descending: bool, limit: int) -> list[int] | None:
    """Up to ``limit`` ids of the documents holding every word of ``q`` (any project's), in id order
    (``descending``: newest first), after ``after``: FTS5 reads its list of rowids in order from there
    and stops, so a chunk costs its own length, however many documents match. None on PostgreSQL (its
    GIN index answers a bitmap of every match: ``few_matches``)."""
    if session.get_bind().dialect.name != "sqlite":
        return None
    words = _words_of(q)
    if not words:
        return []
    where = "" if after is None else f" AND rowid {'<' if descending else '>'} :after"
    sql = (f"SELECT rowid FROM {WORD_INDEX_PREFIX} WHERE {WORD_INDEX_PREFIX} MATCH :q{where} "
           f"ORDER BY rowid {'DESC' if descending else ''} LIMIT :n")
    return list(session.scalars(text(sql), {"q": _fts_query(words), "after": after, "n": limit}))


# PostgreSQL: a word the planner expects in at most this many times ``most`` documents is probed (its
# GIN bitmap, then those rows); past it the probe is not worth its cost (at 200,000 documents a probe of
# a word the planner put at 7,000 added 25 ms to the 110 ms page it then fell back to).
_PG_PROBE_ESTIMATE = 2.5


def few_matches(session: Session, q: str, most: int) -> list[int] | None:
    """The ids of the documents holding every word of ``q`` (any project's) when at most ``most`` do;
    None when more do (or, on PostgreSQL, when the planner expects many: the probe is skipped)."""
    words = _words_of(q)
    if not words:
        return []
    if session.get_bind().dialect.name == "sqlite":
        ids = matching_ids(session, q, after=None, descending=False, limit=most + 1)
        return None if ids is None or len(ids) > most else ids
    where = "to_tsvector('simple', text) @@ plainto_tsquery('simple', :q)"
    explain = text(f"EXPLAIN (FORMAT JSON) SELECT sample_id FROM sample_texts WHERE {where}")
    # The planner's guess first (a planning, no execution), word by word: the documents holding them all
    # are at most those holding the rarest (its guess for several words at once multiplies theirs, and
    # was 20 times short for 'oil prices'). For a common word the probe's bitmap costs tens of ms.
    rarest = min(session.execute(explain, {"q": w}).scalar_one()[0]["Plan"]["Plan Rows"] for w in words)
    if rarest > _PG_PROBE_ESTIMATE * most:
        return None
    ids = list(session.scalars(text(f"SELECT sample_id FROM sample_texts WHERE {where} LIMIT :n"),
                               {"q": " ".join(words), "n": most + 1}))
    return None if len(ids) > most else ids
