"""when a webhook delivery's task reached the broker

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 18:00:00

* ``webhook_deliveries.queued_at``: stamped when the delivery's task has reached the broker. The send
  after the delivery's commit could fail (Redis down, a locked SQLite broker) and the delivery stayed
  'pending' for good; a running worker's sweep now sends a pending delivery whose ``queued_at`` is still
  empty some seconds after its creation, and never one whose task is in the broker (waiting in a busy
  queue, or between retries). Rows from before this revision have none: their pending ones are sent once
  more by the first sweep (at least once; the receiver dedupes by ``X-Loupe-Delivery``), which also
  delivers the ones that were lost.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.models.base

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("webhook_deliveries",
                  sa.Column("queued_at", app.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("webhook_deliveries", "queued_at")
