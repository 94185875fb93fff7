"""near-duplicates and outliers (issue 18, items 2 and 3)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 23:40:00

* ``data_check_sets``: the duplicate groups and the least typical / blank samples the train job finds
  once per embedding version (one JSON list each, keyed by the embedding version):
  ``GET /projects/{pid}/duplicates`` and ``/outliers`` answer 409 until one exists for the current one.
* ``sample_exclusions``: samples an expert took out of the pool (a copy of another sample, an odd
  image): the queue never serves them; deleting the row brings the sample back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_check_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("embedding_version_id", sa.Integer(), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("outliers", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_data_check_sets_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["embedding_version_id"], ["embedding_versions.id"],
            name=op.f("fk_data_check_sets_embedding_version_id_embedding_versions"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_check_sets")),
    )
    op.create_index(op.f("ix_data_check_sets_project_id"), "data_check_sets", ["project_id"], unique=False)
    op.create_table(
        "sample_exclusions",
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["samples.id"], name=op.f("fk_sample_exclusions_sample_id_samples"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_sample_exclusions_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sample_exclusions_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("sample_id", name=op.f("pk_sample_exclusions")),
    )
    op.create_index(op.f("ix_sample_exclusions_project_id"), "sample_exclusions", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sample_exclusions_project_id"), table_name="sample_exclusions")
    op.drop_table("sample_exclusions")
    op.drop_index(op.f("ix_data_check_sets_project_id"), table_name="data_check_sets")
    op.drop_table("data_check_sets")
