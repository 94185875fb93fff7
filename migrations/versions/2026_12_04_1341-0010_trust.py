"""trust fixes (issue 14): one retrain trigger count, per-project model numbers, per-tab leases

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 13:41:00

* ``label_counts.set_labels`` counts the labels that can change what a model learns: primary "set"
  revisions (first labels and corrections, from people, reviews and imports), no longer second
  opinions. ``model_versions.label_revisions`` records that counter when a train job read its labels,
  so the retrain trigger subtracts like from like (it compared label revisions with labelled samples,
  and every undo, relabel or second opinion widened the gap for good). Backfilled: the counter
  recounted (one row per project carries it), and every existing version gets the project's counter,
  so an upgraded project's next retrain comes after ``retrain_every`` new labels.
* ``model_versions.number``: 1, 2, ... within a project (the ids were shared across projects, so a
  new project's first model showed as "v3"). Backfilled in id order.
* ``samples.lease_client``: which client (a browser tab) of the leaseholder holds a sample.
* ``predictions.probability`` and ``labels.selection_probability`` dropped: every stored value was 1.0 or
  NULL (the strategies are deterministic, and only the selected batch had one) and nothing read them, so
  the claim that they allow unbiased estimates was empty. The honest estimate is the audit sample's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("model_versions", sa.Column("label_revisions", sa.BigInteger(), nullable=True))
    op.add_column("model_versions", sa.Column("number", sa.Integer(), nullable=True))
    op.add_column("samples", sa.Column("lease_client", sa.String(length=64), nullable=True))
    op.drop_column("predictions", "probability")
    op.drop_column("labels", "selection_probability")
    op.execute(
        "UPDATE label_counts SET set_labels = CASE WHEN id = (SELECT min(c.id) FROM label_counts c "
        "WHERE c.project_id = label_counts.project_id) THEN (SELECT count(*) FROM labels "
        "WHERE labels.project_id = label_counts.project_id AND labels.action = 'set' "
        "AND labels.opinion = 'primary') ELSE 0 END"
    )
    op.execute(
        "UPDATE model_versions SET label_revisions = (SELECT coalesce(sum(c.set_labels), 0) FROM label_counts c "
        "WHERE c.project_id = model_versions.project_id), number = (SELECT count(*) FROM model_versions m "
        "WHERE m.project_id = model_versions.project_id AND m.id <= model_versions.id)"
    )


def downgrade() -> None:
    op.add_column("labels", sa.Column("selection_probability", sa.Float(), nullable=True))
    op.add_column("predictions", sa.Column("probability", sa.Float(), nullable=True))
    op.drop_column("samples", "lease_client")
    op.drop_column("model_versions", "number")
    op.drop_column("model_versions", "label_revisions")
    # The counter goes back to every "set" revision, as 0007 counted it.
    op.execute(
        "UPDATE label_counts SET set_labels = CASE WHEN id = (SELECT min(c.id) FROM label_counts c "
        "WHERE c.project_id = label_counts.project_id) THEN (SELECT count(*) FROM labels "
        "WHERE labels.project_id = label_counts.project_id AND labels.action = 'set') ELSE 0 END"
    )
