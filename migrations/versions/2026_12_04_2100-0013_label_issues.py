"""likely label errors (issue 18)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 21:00:00

* ``label_issue_sets``: the ranked "possibly mislabelled" list the train job computes after each model
  (out-of-fold probabilities, confident learning), one JSON list per run, keyed by the embedding version
  it was computed on: ``GET /projects/{pid}/label-issues`` answers 409 until one exists for the current
  embedding version.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "label_issue_sets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("embedding_version_id", sa.Integer(), nullable=True),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_label_issue_sets_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["embedding_version_id"], ["embedding_versions.id"],
            name=op.f("fk_label_issue_sets_embedding_version_id_embedding_versions"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"],
            name=op.f("fk_label_issue_sets_model_version_id_model_versions"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_issue_sets")),
    )
    op.create_index(op.f("ix_label_issue_sets_project_id"), "label_issue_sets", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_label_issue_sets_project_id"), table_name="label_issue_sets")
    op.drop_table("label_issue_sets")
