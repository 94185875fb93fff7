"""sample counts: a row trigger on a status change instead of a statement trigger on every UPDATE

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:15:00

Schema 0005 keeps ``sample_counts`` with statement-level triggers on ``samples`` that read transition
tables. The UPDATE one ran its PL/pgSQL and a union over the old and new rows for every UPDATE of
samples, and the queue's lease claim (every page of every annotator) is one such UPDATE that never
changes a count: it doubled the database time of a lease update plus a label (0.64 ms of 1.25 ms per
pair, measured). A row-level trigger with a WHEN condition is skipped by PostgreSQL itself unless
``status`` (or ``project_id``) changed, and appends the same deltas when one did. The INSERT and
DELETE triggers stay as they are. PostgreSQL only, as 0005 (SQLite counts the samples).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROW_FUNCTION = """
CREATE FUNCTION loupe_sample_status_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.project_id = NEW.project_id THEN
        INSERT INTO sample_counts (project_id, total, labelled)
        VALUES (NEW.project_id, 0, (NEW.status = 'labelled')::int - (OLD.status = 'labelled')::int);
    ELSE
        INSERT INTO sample_counts (project_id, total, labelled)
        VALUES (OLD.project_id, -1, -((OLD.status = 'labelled')::int)),
               (NEW.project_id, 1, (NEW.status = 'labelled')::int);
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS samples_count_update ON samples")
    op.execute(ROW_FUNCTION)
    op.execute("CREATE TRIGGER samples_count_status AFTER UPDATE OF status, project_id ON samples FOR EACH ROW "
               "WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.project_id IS DISTINCT FROM NEW.project_id) "
               "EXECUTE FUNCTION loupe_sample_status_count()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS samples_count_status ON samples")
    op.execute("DROP FUNCTION IF EXISTS loupe_sample_status_count()")
    op.execute("CREATE TRIGGER samples_count_update AFTER UPDATE ON samples "
               "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION loupe_sample_counts()")
