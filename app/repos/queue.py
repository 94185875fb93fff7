"""The queue's queries: candidates for a page, the lease claim, what the page shows, the release.

Every page an annotator asks for runs these, so they are built once (building a statement and its
cache key cost more CPU than running it). Core, on the table: plain rows, no ORM objects. Each is a
query an index answers by reading only the rows it returns (a partial index on leased samples, the
audit partial index, the rand_key index, the predictions' priority index): a page costs the same with
a thousand samples or a million. (One ORDER BY "mine first, then best" sorted the pool.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import cast

from sqlalchemy import CursorResult, Table, bindparam, or_, select, update
from sqlalchemy.orm import Session

from app.models import ModelVersion, Prediction, Sample
from app.repos.data_checks import in_pool


@dataclass(frozen=True)
class LeasedSample:
    id: int
    filename: str
    width: int
    height: int
    is_audit: bool
    # Served for a second opinion: labelled by another annotator, whose label the caller does not see.
    second: bool = False


@dataclass(frozen=True)
class Caller:
    """Whose page it is, and the bind values every statement of a page shares."""
    project_id: int
    user_id: int
    client: str  # a browser tab's id ("" for a caller that names none)
    model_version_id: int | None
    now: datetime

    @cached_property
    def params(self) -> dict:
        return {"pid": self.project_id, "now": self.now, "uid": self.user_id, "client": self.client,
                "mv": self.model_version_id}


_S, _P = cast(Table, Sample.__table__), cast(Table, Prediction.__table__)
_UNLABELLED = (_S.c.project_id == bindparam("pid"), _S.c.status == "unlabelled")
_FREE = or_(_S.c.lease_expires_at.is_(None), _S.c.lease_expires_at < bindparam("now"))
_NOT_TAKEN = _S.c.id.not_in(bindparam("taken", expanding=True))
# A sample an expert took out of the pool (a copy of another, an odd image; issue 18) is never served:
# an anti-join on the exclusions' primary key, one index probe per candidate.
_IN_POOL = in_pool(_S.c.id)
# A lease belongs to a user's client (a browser tab, "" for a caller that names none): two tabs of one
# user are served different samples, as two annotators are.
_MINE = (_S.c.leased_by == bindparam("uid")) & (_S.c.lease_client == bindparam("client"))
# What a caller may hold: an unlabelled sample, or a labelled one leased for a second opinion (the project's
# overlap, app/services/overlap.py). Read through the small leased_by index, so the OR costs nothing.
_HOLDABLE = (_S.c.project_id == bindparam("pid"),
             or_(_S.c.status == "unlabelled", _S.c.awaiting_second.is_not(None) & (_S.c.status == "labelled")))
_IS_SECOND = (_S.c.status == "labelled").label("second")
_HELD = (select(_S.c.id, _S.c.is_audit, _IS_SECOND).where(*_HOLDABLE, _MINE)
         .order_by(_S.c.rand_key).limit(bindparam("limit")).with_for_update(skip_locked=True, of=_S))
# Samples whose first label awaits a second opinion from anyone but its labeller, in random order: the
# partial index ix_samples_second_wanted holds only those (none in a project without overlap).
_SECOND = (select(_S.c.id).where(_S.c.project_id == bindparam("pid"), _S.c.awaiting_second.is_not(None),
                                 _S.c.awaiting_second != bindparam("uid"), _S.c.status == "labelled", _FREE,
                                 _NOT_TAKEN, _IN_POOL)
           .order_by(_S.c.rand_key).limit(bindparam("limit")).with_for_update(skip_locked=True, of=_S))
# Plain ``is_audit``, not ``is_audit IS true``: PostgreSQL matches the partial index
# ix_samples_audit_queue (WHERE is_audit AND ...) only to the former; with ``IS true`` it walked the
# whole-pool index instead, stepping over thousands of non-audit rows (11 ms a page at 1M samples).
_AUDIT = (select(_S.c.id).where(*_UNLABELLED, _S.c.is_audit, _FREE, _NOT_TAKEN, _IN_POOL)
          .order_by(_S.c.rand_key).limit(bindparam("limit")).with_for_update(skip_locked=True, of=_S))
_ON_PRED = (_P.c.sample_id == _S.c.id) & (_P.c.model_version_id == bindparam("mv"))
_BEST_FIRST = (_P.c.priority.desc(), _P.c.sample_id.desc())
_HELD_WITH_PRED = (select(_S.c.id).join(_P, _ON_PRED).where(_S.c.id.in_(bindparam("ids", expanding=True)))
                   .order_by(*_BEST_FIRST))
_FRESH_BY_PRED = (select(_S.c.id).join(_P, _ON_PRED).where(*_UNLABELLED, _S.c.is_audit.is_(False), _FREE, _NOT_TAKEN,
                                                           _IN_POOL)
                  .order_by(*_BEST_FIRST).limit(bindparam("limit")).with_for_update(skip_locked=True, of=_S))
_FRESH_RANDOM = (select(_S.c.id).where(*_UNLABELLED, _S.c.is_audit.is_(False), _FREE, _NOT_TAKEN, _IN_POOL)
                 .order_by(_S.c.rand_key).limit(bindparam("limit")).with_for_update(skip_locked=True, of=_S))
# What the caller's client holds now, read only (the GET's answer): no lock, no renewal.
_HELD_NOW = (select(_S.c.id, _S.c.filename, _S.c.width, _S.c.height, _S.c.is_audit, _IS_SECOND,
                    _S.c.lease_expires_at)
             .where(*_HOLDABLE, _MINE, _S.c.lease_expires_at >= bindparam("now"))
             .order_by(_S.c.rand_key).limit(bindparam("limit")))
# The claim returns the rows it took: only those are served (a candidate someone else claimed
# meanwhile is not free any more and is left out).
_CLAIM = (update(_S)
          .where(_S.c.id.in_(bindparam("ids", expanding=True)), or_(_FREE, _MINE))
          .values(leased_by=bindparam("uid"), lease_client=bindparam("client"), lease_expires_at=bindparam("expires"))
          .returning(_S.c.id, _S.c.filename, _S.c.width, _S.c.height, _S.c.is_audit, _S.c.status))
_PREDICTIONS = select(Prediction).where(Prediction.model_version_id == bindparam("mv"),
                                        Prediction.sample_id.in_(bindparam("ids", expanding=True)))
# The one column: the row's metrics (curves, confusion matrix) are JSON to parse for nothing.
_STRATEGY = select(ModelVersion.strategy, ModelVersion.number).where(ModelVersion.id == bindparam("mv"))


def held(session: Session, caller: Caller, limit: int) -> list[tuple[int, bool, bool]]:
    """(sample id, is_audit, for a second opinion) of what the caller's client already holds, unlabelled
    or awaiting a second opinion, locked."""
    return [(r[0], bool(r[1]), bool(r[2])) for r in session.execute(_HELD, caller.params | {"limit": limit})]


def held_now(session: Session, caller: Caller, limit: int) -> list[tuple[LeasedSample, datetime]]:
    """What the caller's client holds now (unlabelled, lease not expired) and until when; reads only."""
    return [(LeasedSample(r.id, r.filename, r.width, r.height, bool(r.is_audit), bool(r.second)), r.lease_expires_at)
            for r in session.execute(_HELD_NOW, caller.params | {"limit": limit})]


def free_audit(session: Session, caller: Caller, taken: list[int], limit: int) -> list[int]:
    """Free unlabelled audit samples in random order (their ``rand_key``), locked (skipping locked ones)."""
    return list(session.scalars(_AUDIT, caller.params | {"taken": taken, "limit": limit}))


def free_second(session: Session, caller: Caller, taken: list[int], limit: int) -> list[int]:
    """Free samples awaiting a second opinion from anyone but their first labeller (the caller is not
    it), in random order, locked (skipping locked ones)."""
    return list(session.scalars(_SECOND, caller.params | {"taken": taken, "limit": limit}))


def with_prediction(session: Session, caller: Caller, sample_ids: list[int]) -> list[int]:
    """Those of ``sample_ids`` with a prediction of the caller's model version, best first."""
    return list(session.scalars(_HELD_WITH_PRED, caller.params | {"ids": sample_ids}))


def free_best(session: Session, caller: Caller, taken: list[int], limit: int) -> list[int]:
    """Free unlabelled samples outside the audit pool: by the model version's priority, or at random
    without a model; locked (skipping locked ones)."""
    stmt = _FRESH_BY_PRED if caller.model_version_id is not None else _FRESH_RANDOM
    return list(session.scalars(stmt, caller.params | {"taken": taken, "limit": limit}))


def claim(session: Session, caller: Caller, sample_ids: list[int], expires: datetime) -> dict[int, LeasedSample]:
    """Lease those of ``sample_ids`` still free (or the caller's) to the caller's client until ``expires``."""
    return {r.id: LeasedSample(r.id, r.filename, r.width, r.height, bool(r.is_audit), r.status == "labelled")
            for r in session.execute(_CLAIM, caller.params | {"ids": sample_ids, "expires": expires})}


def predictions(session: Session, model_version_id: int, sample_ids: list[int]) -> dict[int, Prediction]:
    return {p.sample_id: p for p in session.scalars(_PREDICTIONS, {"mv": model_version_id, "ids": sample_ids})}


def strategy(session: Session, model_version_id: int) -> tuple[str, int | None]:
    """The strategy and number of a model version (``("unknown", None)`` if it is gone)."""
    found = session.execute(_STRATEGY, {"mv": model_version_id}).one_or_none()
    return (found[0], found[1]) if found is not None else ("unknown", None)


def release(session: Session, project_id: int, user_id: int, sample_ids: list[int]) -> int:
    """End the user's leases on ``sample_ids``; how many there were."""
    res = session.execute(
        update(Sample)
        .where(Sample.project_id == project_id, Sample.id.in_(sample_ids), Sample.leased_by == user_id)
        .values(leased_by=None, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )
    return cast(CursorResult, res).rowcount or 0
