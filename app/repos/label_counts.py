"""The project's label counters (``label_counts``, schema 0007): what the retrain trigger and the queue's
audit share read instead of counting labels.

One row per labeller (``shard``), added to with ``x = x + n`` in the transaction that changes the
labels: a rollback takes its counts with it, concurrent calls add up, and annotators never wait on
each other's lock. A project's figure is the sum over its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from app.models import LabelCount, ModelVersion


@dataclass(frozen=True)
class LabelTotals:
    set_labels: int  # primary "set" revisions, every source: the "new labels" the retrain trigger counts
    labelled: int  # samples with a current label
    audit_labelled: int  # ... of them in the audit pool


_BUMP_AND_SUM_PG = text("""
WITH up AS (
    INSERT INTO label_counts (project_id, shard, set_labels, labelled, audit_labelled)
    VALUES (:p, :shard, :n, :l, :a)
    ON CONFLICT (project_id, shard) DO UPDATE SET
        set_labels = label_counts.set_labels + EXCLUDED.set_labels,
        labelled = label_counts.labelled + EXCLUDED.labelled,
        audit_labelled = label_counts.audit_labelled + EXCLUDED.audit_labelled
    RETURNING 1
)
SELECT coalesce(sum(set_labels), 0) + :n, coalesce(sum(labelled), 0) + :l, coalesce(sum(audit_labelled), 0) + :a
FROM label_counts WHERE project_id = :p
""")

_C = LabelCount.__table__.c
_TOTALS = select(func.coalesce(func.sum(_C.set_labels), 0), func.coalesce(func.sum(_C.labelled), 0),
                 func.coalesce(func.sum(_C.audit_labelled), 0)).where(_C.project_id == bindparam("pid"))


def bump(session: Session, project_id: int, user_id: int | None, set_labels: int, labelled: int,
         audit_labelled: int) -> LabelTotals | None:
    """Add to the project's counters, into the labeller's own row; the project's totals after it, as
    this transaction sees them (None if there was nothing to add).

    On PostgreSQL one statement upserts and sums the project's rows (its snapshot is from before the
    upsert, hence ``+ n``), so the retrain trigger that follows costs no query of its own."""
    if not (set_labels or labelled or audit_labelled):
        return None
    params = {"p": project_id, "shard": user_id or 0, "n": set_labels, "l": labelled, "a": audit_labelled}
    if session.get_bind().dialect.name == "postgresql":
        row = session.execute(_BUMP_AND_SUM_PG, params).one()
        return LabelTotals(int(row[0]), int(row[1]), int(row[2]))
    c = LabelCount
    ins = sqlite.insert(c).values(project_id=project_id, shard=params["shard"], set_labels=set_labels,
                                  labelled=labelled, audit_labelled=audit_labelled)
    session.execute(ins.on_conflict_do_update(
        index_elements=[c.project_id, c.shard],
        set_={"set_labels": c.set_labels + ins.excluded.set_labels, "labelled": c.labelled + ins.excluded.labelled,
              "audit_labelled": c.audit_labelled + ins.excluded.audit_labelled},
    ))
    return totals(session, project_id)


def totals(session: Session, project_id: int) -> LabelTotals:
    """The project's counts: a sum over one row per labeller, however many labels and samples."""
    row = session.execute(_TOTALS, {"pid": project_id}).one()
    return LabelTotals(int(row[0]), int(row[1]), int(row[2]))


# The one column (the row's metrics, curves and confusion matrix, are JSON to parse for nothing), in a
# statement built once: every label call of a project with a model asks.
_TRAINED_ON = select(ModelVersion.label_revisions).where(ModelVersion.id == bindparam("mv"))


def trained_on(session: Session, model_version_id: int) -> int:
    """``set_labels`` as the train job of a model version read it with its labels."""
    return int(session.scalar(_TRAINED_ON, {"mv": model_version_id}) or 0)
