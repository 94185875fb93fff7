"""job scheduling and background pretraining (issue 13)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 13:42:00

* ``jobs.eta_at``: when the running job (a pretraining chunk: when its backbone is checked) is
  expected to end, as its worker last estimated it.
* ``jobs.figures``: what the worker reports for the project's status line while the job runs (the
  pretraining run's overall fraction, images embedded of how many).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("eta_at", app.models.base.UTCDateTime(timezone=True), nullable=True))
    op.add_column("jobs", sa.Column("figures", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "figures")
    op.drop_column("jobs", "eta_at")
