"""predictions without foreign keys; sample counts kept by triggers (PostgreSQL)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 22:15:00

Two things that made a pool of a million samples slow, measured by bench/scale.py:

* A train job COPYs one prediction row per sample. The two foreign keys on ``predictions`` cost a
  row-level check each: 31 s of a 1M-row COPY, 11 s without them. Predictions are derived data the
  train job writes and deletes by version, so they go.
* ``GET metrics`` and ``GET projects`` counted the project's samples (150 ms at 1M, growing with the
  pool). On PostgreSQL, statement-level triggers on ``samples`` append (total, labelled) deltas to
  ``sample_counts``; the counts are a sum over a handful of rows. Appending, rather than updating one
  row per project, never makes a labelling request wait for a long import into the same project.
  SQLite keeps counting (its pools are small).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIGGER_FUNCTION = """
CREATE FUNCTION loupe_sample_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sample_counts (project_id, total, labelled)
        SELECT project_id, count(*), count(*) FILTER (WHERE status = 'labelled') FROM new_rows GROUP BY project_id;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO sample_counts (project_id, total, labelled)
        SELECT project_id, -count(*), -count(*) FILTER (WHERE status = 'labelled') FROM old_rows GROUP BY project_id;
    ELSE
        INSERT INTO sample_counts (project_id, total, labelled)
        SELECT project_id, sum(d_total), sum(d_labelled) FROM (
            SELECT project_id, 1 AS d_total, (status = 'labelled')::int AS d_labelled FROM new_rows
            UNION ALL
            SELECT project_id, -1, -((status = 'labelled')::int) FROM old_rows
        ) d GROUP BY project_id HAVING sum(d_total) <> 0 OR sum(d_labelled) <> 0;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_constraint("fk_predictions_model_version_id_model_versions", type_="foreignkey")
        batch_op.drop_constraint("fk_predictions_sample_id_samples", type_="foreignkey")
    op.create_table(
        "sample_counts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("labelled", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_counts")),
    )
    with op.batch_alter_table("sample_counts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sample_counts_project_id"), ["project_id"], unique=False)
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(TRIGGER_FUNCTION)
    op.execute("CREATE TRIGGER samples_count_insert AFTER INSERT ON samples REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION loupe_sample_counts()")
    op.execute("CREATE TRIGGER samples_count_update AFTER UPDATE ON samples "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION loupe_sample_counts()")
    op.execute("CREATE TRIGGER samples_count_delete AFTER DELETE ON samples REFERENCING OLD TABLE AS old_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION loupe_sample_counts()")
    op.execute("INSERT INTO sample_counts (project_id, total, labelled) SELECT project_id, count(*), "
               "count(*) FILTER (WHERE status = 'labelled') FROM samples GROUP BY project_id")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS samples_count_{name} ON samples")
        op.execute("DROP FUNCTION IF EXISTS loupe_sample_counts()")
    with op.batch_alter_table("sample_counts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sample_counts_project_id"))
    op.drop_table("sample_counts")
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_foreign_key("fk_predictions_sample_id_samples", "samples", ["sample_id"], ["id"],
                                    ondelete="CASCADE")
        batch_op.create_foreign_key("fk_predictions_model_version_id_model_versions", "model_versions",
                                    ["model_version_id"], ["id"], ondelete="CASCADE")
