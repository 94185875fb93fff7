"""audit queue index: the unlabelled audit samples by rand_key

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:25:00

The queue's audit step read ~20 samples of the general index per audit sample it served (and more
past the leased ones); a partial index over the unlabelled audit pool reads only what it returns.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("is_audit AND status = 'unlabelled'")


def upgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.create_index("ix_samples_audit_queue", ["project_id", "rand_key"], unique=False,
                              postgresql_where=WHERE, sqlite_where=WHERE)


def downgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_index("ix_samples_audit_queue", postgresql_where=WHERE, sqlite_where=WHERE)
