"""queue indexes: leased samples, predictions by (version, priority, sample)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 22:05:00

The queue's ORDER BY (priority DESC, sample_id DESC) is answered by a backward scan of the predictions
index, and "what does this annotator hold" by a partial index over the few leased samples, so serving a
page costs the same at 10k and 1M samples.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_version_priority")
        batch_op.create_index("ix_predictions_version_priority_sample", ["model_version_id", "priority", "sample_id"],
                              unique=False)
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.create_index("ix_samples_leased_by", ["leased_by"], unique=False,
                              postgresql_where=sa.text("leased_by IS NOT NULL"),
                              sqlite_where=sa.text("leased_by IS NOT NULL"))


def downgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_index("ix_samples_leased_by", postgresql_where=sa.text("leased_by IS NOT NULL"),
                            sqlite_where=sa.text("leased_by IS NOT NULL"))
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_version_priority_sample")
        batch_op.create_index("ix_predictions_version_priority", ["model_version_id", "priority"], unique=False)
