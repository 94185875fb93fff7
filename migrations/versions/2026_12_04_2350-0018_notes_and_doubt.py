"""notes and doubt (issue 17, item 4)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 23:50:00

* ``sample_comments``: an expert's note on a sample, shown in the label and review views.
* ``project_guidelines``: a project's labelling guidelines (Markdown, rendered safely by the API) and
  the example samples an admin chose per class.

An "unsure" mark needs no column: it is a label revision with ``action = 'unsure'`` (who, when) that
sets the sample's ``status`` to ``unsure`` and opens a review (reason ``unsure``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sample_comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_sample_comments_project_id_projects"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"], ["samples.id"], name=op.f("fk_sample_comments_sample_id_samples"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sample_comments_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_comments")),
    )
    op.create_index("ix_sample_comments_sample_id", "sample_comments", ["sample_id", "id"], unique=False)
    op.create_index(op.f("ix_sample_comments_project_id"), "sample_comments", ["project_id"], unique=False)
    op.create_table(
        "project_guidelines",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_project_guidelines_project_id_projects"),
            ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"], ["users.id"], name=op.f("fk_project_guidelines_updated_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_guidelines")),
    )


def downgrade() -> None:
    op.drop_table("project_guidelines")
    op.drop_index(op.f("ix_sample_comments_project_id"), table_name="sample_comments")
    op.drop_index("ix_sample_comments_sample_id", table_name="sample_comments")
    op.drop_table("sample_comments")
