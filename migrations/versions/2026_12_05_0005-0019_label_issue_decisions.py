"""decisions on likely label errors (issue 18, item 1)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 00:05:00

* ``label_issue_decisions``: what an expert decided about a label the list doubted: ``keep`` (the label
  is right; the list stops showing it while the label stays) or ``relabel`` (the new label itself is an
  ordinary label revision); who, when, the label and the model's alternative at the time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "label_issue_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("previous_label", sa.String(length=200), nullable=True),
        sa.Column("suggested_label", sa.String(length=200), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"],
                                name=op.f("fk_label_issue_decisions_project_id_projects"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["sample_id"], ["samples.id"],
                                name=op.f("fk_label_issue_decisions_sample_id_samples"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_label_issue_decisions_user_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_issue_decisions")),
    )
    op.create_index(op.f("ix_label_issue_decisions_project_id"), "label_issue_decisions", ["project_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_label_issue_decisions_project_id"), table_name="label_issue_decisions")
    op.drop_table("label_issue_decisions")
