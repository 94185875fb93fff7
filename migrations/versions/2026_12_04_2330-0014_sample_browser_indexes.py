"""sample browser indexes (issue 17, item 1), and labels by (user, project, id)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 23:30:00

The sample browser (``GET /projects/{pid}/samples``) pages by keyset, each order and filter read off an
index so a page of 100 reads about 100 rows at 1M samples (docs/benchmarks.md, "Sample browser"):

* ``samples (project_id, id)``: the default order, created (ids grow with imports), and what the
  file-name and audit filters walk;
* ``samples (project_id, status, id)`` and ``(project_id, label, id)``: status and human-label filters;
* ``samples (project_id, source_folder, id)`` where a folder is set: the imported-folder filter;
* ``predictions (model_version_id, confidence, sample_id)`` and ``(model_version_id, score, sample_id)``:
  the orders by the current model's confidence and acquisition score, and confidence ranges.

``labels (user_id, project_id, id)``: ``GET /projects/{pid}/labels/mine`` (the caller's newest
revisions in a project) read off it instead of every label of the user.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOLDER = sa.text("source_folder IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.create_index("ix_samples_project_id", ["project_id", "id"], unique=False)
        batch_op.create_index("ix_samples_project_status_id", ["project_id", "status", "id"], unique=False)
        batch_op.create_index("ix_samples_project_label_id", ["project_id", "label", "id"], unique=False)
        batch_op.create_index("ix_samples_project_folder_id", ["project_id", "source_folder", "id"], unique=False,
                              postgresql_where=FOLDER, sqlite_where=FOLDER)
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index("ix_predictions_version_confidence_sample",
                              ["model_version_id", "confidence", "sample_id"], unique=False)
        batch_op.create_index("ix_predictions_version_score_sample", ["model_version_id", "score", "sample_id"],
                              unique=False)
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index("ix_labels_user_project_id", ["user_id", "project_id", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index("ix_labels_user_project_id")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_version_score_sample")
        batch_op.drop_index("ix_predictions_version_confidence_sample")
    with op.batch_alter_table("samples", schema=None) as batch_op:
        batch_op.drop_index("ix_samples_project_folder_id", postgresql_where=FOLDER, sqlite_where=FOLDER)
        batch_op.drop_index("ix_samples_project_label_id")
        batch_op.drop_index("ix_samples_project_status_id")
        batch_op.drop_index("ix_samples_project_id")
