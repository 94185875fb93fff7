"""label counts: per-project label and labelled-sample counters, one row per labeller

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 00:50:00

Every label call counted the project's label revisions (the retrain trigger) and every queue call
counted its labelled and labelled audit samples (the audit quota): counts over rows that grow with the
project. ``app/services/labels.py`` now adds to ``label_counts`` in the transaction that changes them,
and the trigger and the quota read a sum over a project's rows. One row per labeller (``shard`` is
the user's id, 0 for labels that came with the data), not one per project: a single counter row
that every label call updates makes 20 annotators wait for each other's commits (measured:
bench/load.py with a counter on ``projects`` spent most of its time waiting on that row's lock). An
upsert and a plain sum on both databases; the backfill gives existing projects their true counts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "label_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("set_labels", sa.BigInteger(), nullable=False),
        sa.Column("labelled", sa.BigInteger(), nullable=False),
        sa.Column("audit_labelled", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name=op.f("fk_label_counts_project_id_projects"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_counts")),
        sa.UniqueConstraint("project_id", "shard", name=op.f("uq_label_counts_project_id")),
    )
    op.execute(
        "INSERT INTO label_counts (project_id, shard, set_labels, labelled, audit_labelled) "
        "SELECT projects.id, 0, "
        "(SELECT count(*) FROM labels WHERE labels.project_id = projects.id AND labels.action = 'set'), "
        "(SELECT count(*) FROM samples WHERE samples.project_id = projects.id AND samples.status = 'labelled'), "
        "(SELECT count(*) FROM samples WHERE samples.project_id = projects.id AND samples.status = 'labelled' "
        "AND samples.is_audit) "
        "FROM projects"
    )


def downgrade() -> None:
    op.drop_table("label_counts")
