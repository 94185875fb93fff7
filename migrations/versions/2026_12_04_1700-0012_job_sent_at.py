"""when a queued job's task was last sent (issue 15)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 17:00:00

* ``jobs.sent_at``: when the API last handed the job's task to the broker successfully. A request that
  folds into a waiting job sends its task again (reviving a message lost with the broker) only when
  this is older than ``app.services.jobs.RESEND_EVERY_S``: once K labels have arrived every label folds
  into the waiting train job, and a send per label cost a broker round trip each. It was a dict in the
  API process's memory; on the row, every API process shares it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("sent_at", app.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "sent_at")
