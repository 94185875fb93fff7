"""word search over text projects' documents (issue 19: search in the sample browser by words)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 03:00:00

The sample browser's ``q`` matches a text project's document words through an index, so a page reads
the documents that hold the words, never the whole pool:

* PostgreSQL: a GIN index on ``to_tsvector('simple', text)`` (no stemming, no stop words: an expert's
  words as written, case folded), asked with ``plainto_tsquery('simple', q)`` (every word).
* SQLite: an FTS5 table over ``sample_texts`` (external content, ``rowid`` = ``sample_id``), kept by
  triggers on insert, update and delete; ``unicode61`` folds case and diacritics (PostgreSQL's
  ``simple`` folds case only: ``unaccent`` is an extension, and not immutable for an index).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_UP = (
    "CREATE VIRTUAL TABLE sample_texts_fts USING fts5(text, content='sample_texts', content_rowid='sample_id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER sample_texts_fts_ai AFTER INSERT ON sample_texts BEGIN "
    "INSERT INTO sample_texts_fts(rowid, text) VALUES (new.sample_id, new.text); END",
    "CREATE TRIGGER sample_texts_fts_ad AFTER DELETE ON sample_texts BEGIN "
    "INSERT INTO sample_texts_fts(sample_texts_fts, rowid, text) VALUES ('delete', old.sample_id, old.text); END",
    "CREATE TRIGGER sample_texts_fts_au AFTER UPDATE ON sample_texts BEGIN "
    "INSERT INTO sample_texts_fts(sample_texts_fts, rowid, text) VALUES ('delete', old.sample_id, old.text); "
    "INSERT INTO sample_texts_fts(rowid, text) VALUES (new.sample_id, new.text); END",
    "INSERT INTO sample_texts_fts(sample_texts_fts) VALUES ('rebuild')",
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_sample_texts_words ON sample_texts USING gin (to_tsvector('simple', text))")
    else:
        for statement in _SQLITE_UP:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_sample_texts_words")
    else:
        for name in ("sample_texts_fts_ai", "sample_texts_fts_ad", "sample_texts_fts_au"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE sample_texts_fts")
