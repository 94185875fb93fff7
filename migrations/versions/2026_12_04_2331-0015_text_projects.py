"""text projects (issue 19)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 23:31:00

* ``projects.kind``: ``image`` (every project before this) or ``text``, chosen at creation and never
  changed (the import, the representation and the label view follow it).
* ``sample_texts``: a text sample's document, one row per sample (a side table, not a column on
  ``samples``: the queue, the counts and the listings scan ``samples`` and SQLite keeps a row's text
  inline, so a 20,000-character document on the row would be read by every queue scan; an image project
  has no rows here at all).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=False, server_default="image"))
    op.create_table(
        "sample_texts",
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["samples.id"], name=op.f("fk_sample_texts_sample_id_samples"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_sample_texts_project_id_projects"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sample_id", name=op.f("pk_sample_texts")),
    )
    op.create_index(op.f("ix_sample_texts_project_id"), "sample_texts", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sample_texts_project_id"), table_name="sample_texts")
    op.drop_table("sample_texts")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("kind")
