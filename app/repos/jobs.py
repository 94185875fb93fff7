"""Queries on job rows: what the API asks (a project's jobs, the one a request folds into) and what the
workers do with them (claim, heartbeat, outcome, recovery of jobs whose worker died).

Functions take the caller's session and never commit, except ``mark_sent``, which runs after a commit
in a transaction of its own."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, Engine, select, update
from sqlalchemy.orm import Session

from app.models import EmbeddingVersion, Job, Project
from app.models.base import utcnow
from app.models.job import ACTIVE_STATES

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the API's questions


def for_project(session: Session, project_id: int, limit: int = 100) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.project_id == project_id).order_by(Job.id.desc()).limit(limit)))


def active(session: Session, project_id: int) -> list[Job]:
    """The project's queued and running jobs."""
    return list(session.scalars(select(Job).where(Job.project_id == project_id, Job.state.in_(ACTIVE_STATES))))


def any_of_kind(session: Session, project_id: int, kind: str) -> bool:
    """Whether the project ever had a job of this kind (in any state)."""
    return session.scalar(select(Job.id).where(Job.project_id == project_id, Job.kind == kind).limit(1)) is not None


def run_under_way(session: Session, project_id: int, kind: str) -> Job | None:
    """The newest queued or running job of ``kind`` whose cancel nobody asked for."""
    return session.scalar(select(Job).where(Job.project_id == project_id, Job.kind == kind,
                                            Job.state.in_(ACTIVE_STATES), Job.cancel_requested.is_(False))
                          .order_by(Job.id.desc()))


def waiting(session: Session, project_id: int, kind: str) -> Job | None:
    """The newest queued job of ``kind``: a new request of that kind folds into it."""
    return session.scalar(select(Job).where(Job.project_id == project_id, Job.kind == kind, Job.state == "queued")
                          .order_by(Job.id.desc()))


def mark_sent(engine: Engine, job_id: int) -> None:
    """Stamp the job's ``sent_at`` in a transaction of its own (its task has just reached the broker)."""
    with Session(engine) as s, s.begin():
        stamp_sent(s, [job_id])


def stamp_sent(session: Session, job_ids: Collection[int]) -> None:
    if job_ids:
        session.execute(update(Job).where(Job.id.in_(job_ids)).values(sent_at=utcnow()))


def never_sent(session: Session, created_before: datetime) -> list[tuple[int, str]]:
    """Queued jobs whose task never reached the broker: the send after their commit failed (a broker
    that was down, or a SQLite broker locked at that moment), and no later request of theirs folded."""
    rows = session.execute(select(Job.id, Job.kind).where(
        Job.state == "queued", Job.sent_at.is_(None), Job.created_at < created_before))
    return [(jid, kind) for jid, kind in rows]


# ---------------------------------------------------------------- the workers' side


def with_project(session: Session, job_id: int) -> tuple[Job, Project, EmbeddingVersion | None]:
    """The job, its project and the project's current embedding version (detached: usable after the
    session closes, while the job runs)."""
    job = session.get(Job, job_id)
    assert job is not None, f"job {job_id} vanished"
    project = session.get(Project, job.project_id)
    assert project is not None
    emb_id = project.current_embedding_version_id
    emb = session.get(EmbeddingVersion, emb_id) if emb_id else None
    if emb is not None:
        session.expunge(emb)
    return job, project, emb


class Claim(NamedTuple):
    """A job a worker claimed: its kind, and ``run``, which names this run of it (the claim's
    ``started_at``, different at each claim). The run's writes to the row (``beat``, ``report``,
    ``finish``, ``put_back``) name it and touch the row only while the run holds the job: running, and
    not re-queued by a sweep (a late heartbeat) or put back and claimed again, nor ended by a cancel."""

    kind: str
    run: datetime


def _held(job_id: int, run: datetime) -> tuple[Any, ...]:
    """The conditions under which the run ``run`` holds the job."""
    return Job.id == job_id, Job.state == "running", Job.started_at == run


def claim(session: Session, job_id: int) -> Claim | None:
    """Move a queued job to running and return the claim; None if someone else has it (or it is finished
    or cancelled), or if a job of the same kind is already running for its project (it then stays
    queued, and is sent again when that one finishes: ``queued_behind``).

    A conditional UPDATE, so a task delivered twice (a re-send, a redelivery) runs the job once. The
    one-per-project rule holds across any number of workers: on PostgreSQL the project row is locked
    first, so two workers claiming two jobs of one project decide one after the other (each statement
    under READ COMMITTED sees the other's committed claim); SQLite's BEGIN IMMEDIATE serialises anyway.
    The caller commits at once: the lock is held until then.
    """
    row = session.execute(select(Job.project_id, Job.kind, Job.started_at)
                          .where(Job.id == job_id, Job.state == "queued")).first()
    if row is None:
        return None
    project_id, kind, last_start = row
    session.execute(select(Project.id).where(Project.id == project_id).with_for_update())
    busy = session.scalar(select(Job.id).where(Job.project_id == project_id, Job.kind == kind,
                                               Job.state == "running", Job.id != job_id).limit(1))
    if busy is not None:
        log.info("job %s waits: %s job %s of project %s is running", job_id, kind, busy, project_id)
        return None
    # Stamped after the check saw the previous job's end committed, so a project's jobs never
    # appear to overlap (a stamp taken before waiting on the lock could precede that job's end).
    now = utcnow()
    if last_start is not None and now <= last_start:  # a clock set back: the run must differ from the last
        now = last_start + timedelta(microseconds=1)
    res = cast(CursorResult[Any], session.execute(
        update(Job).where(Job.id == job_id, Job.state == "queued")
        .values(state="running", started_at=now, heartbeat_at=now, message="started")))
    return Claim(kind, now) if res.rowcount == 1 else None


def queued_behind(session: Session, job_id: int) -> tuple[str, list[int]] | None:
    """(kind, ids) of the queued jobs of the same project and kind as ``job_id``, oldest first: they
    waited for it to finish."""
    row = session.execute(select(Job.project_id, Job.kind).where(Job.id == job_id)).first()
    if row is None:
        return None
    ids = session.scalars(select(Job.id).where(Job.project_id == row[0], Job.kind == row[1], Job.state == "queued")
                          .order_by(Job.id)).all()
    return row[1], list(ids)


def all_queued(session: Session) -> list[tuple[int, str]]:
    return [(jid, kind) for jid, kind in session.execute(select(Job.id, Job.kind).where(Job.state == "queued"))]


def requeue_stale(session: Session, stale_before: datetime, max_attempts: int,
                  alive: Collection[int] = ()) -> list[tuple[int, str]]:
    """Running jobs with no heartbeat since ``stale_before`` (their worker died) go back to the queue, or
    fail after ``max_attempts``. Returns the (id, kind) of those to send again: the re-queued ones, and
    the queued jobs that waited for a failed one (its worker will never send them).

    Every running worker sweeps: on PostgreSQL the rows are locked and another sweep skips them, so a
    lost job counts one attempt (SQLite's BEGIN IMMEDIATE serialises the sweeps anyway). ``alive``: the
    jobs the sweeping process runs itself (late beats, not a lost worker)."""
    resend = []
    for job in list(session.scalars(select(Job).where(Job.state == "running", Job.heartbeat_at < stale_before,
                                                      Job.id.not_in(list(alive)))
                                    .with_for_update(skip_locked=True))):
        job.attempts = (job.attempts or 0) + 1
        if job.cancel_requested or job.attempts >= max_attempts:
            job.finished_at = utcnow()
            if job.cancel_requested:  # its worker, now gone, would have ended it at its next report
                job.state, job.message = "cancelled", "cancelled by an admin (its worker was lost)"
            else:
                job.state, job.message = "failed", "failed: worker lost"
                job.error = f"the worker running this job was lost {job.attempts} times"
            session.flush()
            resend += [(jid, job.kind) for jid in (queued_behind(session, job.id) or ("", []))[1]]
        else:
            job.state, job.progress = "queued", 0.0
            job.message = f"retrying (attempt {job.attempts + 1}) after the worker was lost"
            resend.append((job.id, job.kind))
    return list(dict.fromkeys(resend))


def put_back(session: Session, job_id: int, run: datetime) -> bool:
    """A running job whose worker is stopping goes back to the queue (not a lost attempt: it runs again
    from its start when a worker starts). Whether it was put back (not if ``run`` no longer holds it)."""
    running = _held(job_id, run)
    # One whose cancel was asked ends here instead, as it would have at that report.
    session.execute(update(Job).where(*running, Job.cancel_requested.is_(True))
                    .values(state="cancelled", finished_at=utcnow(), eta_at=None, message="cancelled by an admin"))
    res = cast(CursorResult[Any], session.execute(
        update(Job).where(*running)
        .values(state="queued", progress=0.0, eta_at=None,
                message="put back in the queue: its worker stopped; it runs again when a worker starts")))
    return res.rowcount == 1


def beat(session: Session, job_id: int, run: datetime) -> bool:
    """Stamp the heartbeat of the run ``run``; whether it still holds the job."""
    res = cast(CursorResult[Any], session.execute(update(Job).where(*_held(job_id, run)).values(heartbeat_at=utcnow())))
    return res.rowcount == 1


def _held_row(session: Session, job_id: int, run: datetime) -> Job | None:
    """The job's row, locked, while the run ``run`` holds it (on PostgreSQL a sweep then skips it and a
    cancel waits for the run's commit; SQLite's BEGIN IMMEDIATE serialises anyway)."""
    return session.scalar(select(Job).where(*_held(job_id, run)).with_for_update())


def report(session: Session, job_id: int, run: datetime, fraction: float, message: str, eta_s: float | None,
           figures: dict | None) -> bool | None:
    """Record a running job's progress (and its heartbeat); whether an admin asked to cancel it. None,
    and nothing written, when the run ``run`` no longer holds the job (see ``Claim``)."""
    job = _held_row(session, job_id, run)
    if job is None:
        return None
    job.progress = fraction
    job.message = message[:2000]
    job.heartbeat_at = utcnow()
    job.eta_at = None if eta_s is None else job.heartbeat_at + timedelta(seconds=max(0.0, eta_s))
    if figures:
        job.figures = {**(job.figures or {}), **figures}
    return bool(job.cancel_requested)


def finish(session: Session, job_id: int, run: datetime, state: str, message: str, error: str | None = None,
           detail: str | None = None, result: dict | None = None) -> dict[str, Any] | None:
    """Record the job's outcome; returns what its webhook needs (project_id, kind, result, error), or
    None, and nothing written, when the run ``run`` no longer holds the job (or the row is gone)."""
    job = _held_row(session, job_id, run)
    if job is None:
        return None
    job.state, job.message, job.finished_at, job.eta_at = state, message, utcnow(), None
    if state == "succeeded":
        job.progress = 1.0
    if error:
        job.error = error
        job.result = {**(job.result or {}), "traceback": detail}
    if result is not None:
        job.result = result
    return {"project_id": job.project_id, "kind": job.kind, "result": dict(job.result or {}), "error": job.error}
