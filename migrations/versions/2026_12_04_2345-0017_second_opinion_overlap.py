"""second opinions on purpose (issue 17, item 3)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 23:45:00

* ``samples.awaiting_second``: the annotator whose first label of the sample awaits a second opinion
  (the project's ``overlap`` picked the sample: ``app/services/overlap.py``); the queue serves it to
  anyone else, without the first label, and clears it when their opinion is stored. A plain integer,
  no foreign key: adding one would make SQLite copy the whole table, and a removed account's label
  still wants its second opinion.
* ``ix_samples_second_wanted``: the samples awaiting one, by ``rand_key``: the queue reads only those
  (none at all in a project without overlap), so a page costs the same at any pool size.
Samples labelled before this revision await nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("awaiting_second IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.add_column(sa.Column("awaiting_second", sa.Integer(), nullable=True))
        batch_op.create_index("ix_samples_second_wanted", ["project_id", "rand_key"], unique=False,
                              postgresql_where=WHERE, sqlite_where=WHERE)


def downgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_index("ix_samples_second_wanted", postgresql_where=WHERE, sqlite_where=WHERE)
        batch_op.drop_column("awaiting_second")
