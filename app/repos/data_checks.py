"""Queries on near-duplicates, outliers and excluded samples (issue 18): store a run's sets, read the one
for an embedding version, the samples the lists name, and the pool's exclusions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, exists, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.models import DataCheckSet, Prediction, Sample, SampleExclusion

_X = cast(Table, SampleExclusion.__table__)


def in_pool(sample_id: ColumnElement[int] | InstrumentedAttribute[int]) -> ColumnElement[bool]:
    """The one home of "not taken out of the pool": true for a sample no expert excluded (issue 18).

    Every query that serves or counts samples (the queue, the counts, the class balance, the labels the
    train job fits and audits) takes it, so an excluded sample leaves the queue and the figures alike,
    and comes back with them when its row is deleted. An anti-join on the exclusions' primary key: one
    index probe per row the query reads anyway."""
    return ~exists().where(_X.c.sample_id == sample_id)


def excluded_counts(session: Session, project_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """(excluded samples, of them labelled) per project that has any: what the pool counts subtract
    (read from the few exclusion rows, never the pool)."""
    if not project_ids:
        return {}
    q = (select(_X.c.project_id, func.count(), func.count().filter(Sample.status == "labelled"))
         .join(Sample, Sample.id == _X.c.sample_id)
         .where(_X.c.project_id.in_(project_ids)).group_by(_X.c.project_id))
    return {int(pid): (int(n), int(lab)) for pid, n, lab in session.execute(q)}


def store(session: Session, *, project_id: int, embedding_version_id: int, samples: int,
          groups: list[dict[str, Any]], outliers: list[dict[str, Any]], metrics: dict[str, Any]) -> int:
    """Replace the project's sets with this run's (only the newest is ever read)."""
    session.execute(delete(DataCheckSet).where(DataCheckSet.project_id == project_id))
    row = DataCheckSet(project_id=project_id, embedding_version_id=embedding_version_id, samples=samples,
                       groups=groups, outliers=outliers, metrics=metrics)
    session.add(row)
    session.flush()
    return row.id


def latest(session: Session, project_id: int, embedding_version_id: int) -> DataCheckSet | None:
    """The newest set computed on ``embedding_version_id``; None when none has run on it."""
    return session.scalars(
        select(DataCheckSet)
        .where(DataCheckSet.project_id == project_id, DataCheckSet.embedding_version_id == embedding_version_id)
        .order_by(DataCheckSet.id.desc()).limit(1)
    ).first()


def sample_facts(session: Session, project_id: int, sample_ids: list[int]) -> dict[int, tuple[str | None, bool]]:
    """{sample id: (current label, is_audit)} for those of ``sample_ids`` still in the project."""
    out: dict[int, tuple[str | None, bool]] = {}
    for s in range(0, len(sample_ids), 5000):
        chunk = sample_ids[s:s + 5000]
        for sid, label, audit in session.execute(
                select(Sample.id, Sample.label, Sample.is_audit)
                .where(Sample.project_id == project_id, Sample.id.in_(chunk))):
            out[sid] = (label, bool(audit))
    return out


# "Far from every class", read on each request: a walk of the predictions' (model version, confidence,
# sample) index from its low end, each row's sample looked up by key, stopping at ``limit`` unlabelled
# ones; never a sort of the version's predictions (tests/scale/test_outlier_plans.py reads the plan).
_LEAST_CONFIDENT = (
    select(Prediction.sample_id, Prediction.confidence)
    .join(Sample, Sample.id == Prediction.sample_id)
    .where(Prediction.model_version_id == bindparam("mv"), Prediction.confidence.is_not(None),
           Sample.status == "unlabelled")
    .order_by(Prediction.confidence.asc(), Prediction.sample_id).limit(bindparam("limit")))


def least_confident(session: Session, model_version_id: int, limit: int) -> list[tuple[int, float]]:
    """(sample id, confidence) of the unlabelled samples the model version is least sure of."""
    rows = session.execute(_LEAST_CONFIDENT, {"mv": model_version_id, "limit": limit})
    return [(int(r[0]), float(r[1] or 0.0)) for r in rows]


def exclusions(session: Session, project_id: int) -> dict[int, SampleExclusion]:
    return {e.sample_id: e for e in session.scalars(
        select(SampleExclusion).where(SampleExclusion.project_id == project_id))}


def reasons_among(session: Session, sample_ids: Sequence[int]) -> dict[int, str]:
    """Sample id -> why it was taken out of the pool, for those of ``sample_ids`` that were (a page's few)."""
    if not sample_ids:
        return {}
    return {int(sid): reason for sid, reason in session.execute(
        select(SampleExclusion.sample_id, SampleExclusion.reason).where(SampleExclusion.sample_id.in_(sample_ids)))}


def exclude(session: Session, project_id: int, sample_ids: list[int], reason: str, note: str | None,
            user_id: int | None) -> int:
    """Take ``sample_ids`` (already checked to be the project's) out of the pool; how many were not out yet."""
    have = set(session.scalars(select(SampleExclusion.sample_id).where(SampleExclusion.sample_id.in_(sample_ids))))
    new = [sid for sid in dict.fromkeys(sample_ids) if sid not in have]
    session.add_all([SampleExclusion(sample_id=sid, project_id=project_id, reason=reason, note=note, user_id=user_id)
                     for sid in new])
    session.flush()
    return len(new)


def include(session: Session, project_id: int, sample_ids: list[int]) -> int:
    """Bring ``sample_ids`` back into the pool; how many were out."""
    res = session.execute(delete(SampleExclusion).where(SampleExclusion.project_id == project_id,
                                                        SampleExclusion.sample_id.in_(sample_ids)))
    return int(getattr(res, "rowcount", 0) or 0)


def project_sample_ids(session: Session, project_id: int, sample_ids: list[int]) -> set[int]:
    return set(session.scalars(select(Sample.id).where(Sample.project_id == project_id, Sample.id.in_(sample_ids))))


# Groups no longer chain (``ml.data_check.duplicate_groups``: every member a duplicate of every other; as
# connected components, look-alike digits chained into groups of hundreds, and moving those took 13 of 15
# samples out of a 300-sample pool's audit sample). The guard stays for what complete groups can still be:
# a burst of tens or hundreds of real copies (a run of blank frames, one scene shot over and over). Its side
# is one random draw, so moving it all would swing the audit sample by the whole group at once, on one
# coin; left where it is, it is flagged instead (``splits_audit``). Copies of one picture come in tens at
# most; on the 300 digits the largest complete group holds 8 (docs/benchmarks.md), far below the guard.
MAX_GROUP_MOVED = 20


def keep_groups_on_one_side(session: Session, project_id: int, groups: Sequence[Sequence[int]]) -> int:
    """Move the unlabelled members of each duplicate group to one side of the audit sample, so that no
    copy of a sample the model is fitted on is scored as unseen (issue 18); how many samples moved.

    A group's side is that of its labelled members when it has any (a label stays where it was counted:
    the audit counters and the estimate already hold it); otherwise that of its member with the lowest
    ``rand_key``, a random draw, so a group is in the audit sample as often as a single sample is and the
    sample stays random. A group labelled on both sides already cannot be mended: the duplicates list
    still flags it (``splits_audit``). Only unlabelled samples are updated, so a label arriving meanwhile
    is never moved."""
    facts: dict[int, tuple[str, bool, int]] = {}
    ids = [int(sid) for g in groups for sid in g]
    for s in range(0, len(ids), 5000):
        chunk = ids[s:s + 5000]
        for sid, status, audit, rk in session.execute(
                select(Sample.id, Sample.status, Sample.is_audit, Sample.rand_key)
                .where(Sample.project_id == project_id, Sample.id.in_(chunk))):
            facts[sid] = (status, bool(audit), int(rk))
    move: dict[bool, list[int]] = {True: [], False: []}
    for g in groups:
        members = [facts[sid] + (sid,) for sid in map(int, g) if sid in facts]
        if len(members) > MAX_GROUP_MOVED:
            continue  # a burst too big to hang on one draw: it would swing the audit sample (flagged only)
        if len({m[1] for m in members}) < 2:
            continue  # on one side already
        fixed = {m[1] for m in members if m[0] != "unlabelled"}
        if len(fixed) > 1:
            continue  # labelled on both sides: flagged, not mended
        side = fixed.pop() if fixed else min(members, key=lambda m: m[2])[1]
        move[side] += [m[3] for m in members if m[0] == "unlabelled" and m[1] != side]
    moved = 0
    for side, sids in move.items():
        for s in range(0, len(sids), 5000):
            res = session.execute(update(Sample).where(Sample.id.in_(sids[s:s + 5000]), Sample.status == "unlabelled")
                                  .values(is_audit=side))
            moved += int(getattr(res, "rowcount", 0) or 0)
    return moved
