"""Runs one job row: marks it running, calls the handler for its kind, records the outcome.

How a job reports while it runs is ``workers.jobs.progress``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update

from app.db import session_scope
from app.models import Job
from app.models.base import utcnow
from app.settings import get_settings
from workers.jobs.progress import JobCancelled, Progress

log = logging.getLogger(__name__)


Handler = Callable[[int, Progress], dict]
LONG_KINDS = ("pretrain", "finetune")


def _handlers() -> dict[str, Handler]:
    from workers.jobs import embed, finetune, pretrain, train

    return {"train": train.run, "pretrain": pretrain.run, "embed": embed.run, "finetune": finetune.run}


def claim(db_url: str, job_id: int) -> str | None:
    """Move a queued job to running; None if someone else has it (or it is finished or cancelled), or
    if a job of the same kind is already running for its project (it then stays queued, and is sent
    again when that one finishes: see ``_send_waiting``).

    A conditional UPDATE, so a task delivered twice (a re-send, a redelivery) runs the job once. The
    one-per-project rule holds across any number of workers: on PostgreSQL the project row is locked
    first, so two workers claiming two jobs of one project decide one after the other (each statement
    under READ COMMITTED sees the other's committed claim); SQLite's BEGIN IMMEDIATE serialises anyway.
    """
    from app.models import Project

    with session_scope(db_url) as s:
        row = s.execute(select(Job.project_id, Job.kind).where(Job.id == job_id, Job.state == "queued")).first()
        if row is None:
            return None
        project_id, kind = row
        s.execute(select(Project.id).where(Project.id == project_id).with_for_update())
        busy = s.scalar(select(Job.id).where(Job.project_id == project_id, Job.kind == kind, Job.state == "running",
                                             Job.id != job_id).limit(1))
        if busy is not None:
            log.info("job %s waits: %s job %s of project %s is running", job_id, kind, busy, project_id)
            return None
        # Stamped after the check saw the previous job's end committed, so a project's jobs never
        # appear to overlap (a stamp taken before waiting on the lock could precede that job's end).
        now = utcnow()
        res = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "queued")
            .values(state="running", started_at=now, heartbeat_at=now, message="started")
        )
        if res.rowcount != 1:
            return None
        return kind


def _send_waiting(db_url: str, job_id: int) -> None:
    """Send again the queued jobs of the same project and kind, which waited for this one to finish."""
    from app import task_client

    with session_scope(db_url) as s:
        row = s.execute(select(Job.project_id, Job.kind).where(Job.id == job_id)).first()
        if row is None:
            return
        waiting = s.scalars(select(Job.id).where(Job.project_id == row[0], Job.kind == row[1],
                                                 Job.state == "queued").order_by(Job.id)).all()
    for wid in waiting:
        task_client.send_job(get_settings().broker_url, wid, row[1])


def recover_stale_jobs(db_url: str, stale_seconds: float, max_attempts: int = 3) -> list[tuple[int, str]]:
    """Jobs whose worker died (no heartbeat for ``stale_seconds``) go back to the queue, or fail after
    ``max_attempts``. Returns the (id, kind) of those to send again."""
    cutoff = utcnow() - timedelta(seconds=stale_seconds)
    resend = []
    with session_scope(db_url) as s:
        for job in s.scalars(select(Job).where(Job.state == "running", Job.heartbeat_at < cutoff)):
            job.attempts = (job.attempts or 0) + 1
            if job.attempts >= max_attempts:
                job.state, job.finished_at = "failed", utcnow()
                job.error = f"the worker running this job was lost {job.attempts} times"
                job.message = "failed: worker lost"
            else:
                job.state, job.progress = "queued", 0.0
                job.message = f"retrying (attempt {job.attempts + 1}) after the worker was lost"
                resend.append((job.id, job.kind))
    return resend


class Heartbeat(threading.Thread):
    """Stamps the job's heartbeat while it runs, even through long steps that report no progress."""

    def __init__(self, db_url: str, job_id: int, interval: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.db_url, self.job_id, self.interval = db_url, job_id, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                with session_scope(self.db_url) as s:
                    s.execute(update(Job).where(Job.id == self.job_id, Job.state == "running")
                              .values(heartbeat_at=utcnow()))
            except Exception:  # noqa: BLE001 - a missed beat is retried; the job itself goes on
                log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)


def run_job(job_id: int) -> None:
    settings = get_settings()
    db_url = settings.database_url
    kind = claim(db_url, job_id)
    if kind is None:
        log.info("job %s is not queued (taken, finished or cancelled); skipping", job_id)
        return
    beat = Heartbeat(db_url, job_id, max(1.0, settings.job_stale_seconds / 4))
    beat.start()
    try:
        _run_claimed(db_url, job_id, kind)
    finally:
        beat.stopped.set()
    try:
        _send_waiting(db_url, job_id)
    except Exception:  # noqa: BLE001 - a worker's start re-sends queued jobs too
        log.warning("could not re-send the jobs waiting for job %s", job_id, exc_info=True)


def _run_claimed(db_url: str, job_id: int, kind: str) -> None:
    # A long job reports less often: on SQLite each report takes the write lock for a moment, and a
    # worker at low OS priority can be descheduled holding it while the expert's calls wait for it.
    progress = Progress(job_id, db_url, min_interval=2.0 if kind in LONG_KINDS else 0.5)
    try:
        result = _handlers()[kind](job_id, progress)
    except JobCancelled:
        _finish(db_url, job_id, "cancelled", "cancelled by an admin")
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the job
        log.exception("job %s failed", job_id)
        _finish(db_url, job_id, "failed", "failed", error=f"{type(exc).__name__}: {exc}",
                detail=traceback.format_exc(limit=5))
    else:
        _finish(db_url, job_id, "succeeded", "done", result=result)


def _finish(db_url: str, job_id: int, state: str, message: str, error: str | None = None,
            detail: str | None = None, result: dict | None = None) -> None:
    _record(db_url, job_id, state, message, error, detail, result)
    _notify(db_url, job_id, state)


def _notify(db_url: str, job_id: int, state: str) -> None:
    from workers import webhooks

    with session_scope(db_url) as s:
        job = s.get(Job, job_id)
        if job is None:
            return
        project_id, kind, result, error = job.project_id, job.kind, dict(job.result or {}), job.error
    try:
        if state == "failed":
            webhooks.emit(project_id, "job.failed", {"job_id": job_id, "kind": kind, "error": error})
        elif state == "succeeded" and kind == "train":
            webhooks.emit(project_id, "model_version.ready", {"job_id": job_id, **{
                k: result[k] for k in ("model_version", "labels", "accuracy_estimate") if k in result}})
    except Exception:  # noqa: BLE001 - a webhook problem never changes a job's outcome
        log.warning("could not queue the webhook for job %s", job_id, exc_info=True)


def _record(db_url: str, job_id: int, state: str, message: str, error: str | None,
            detail: str | None, result: dict | None) -> None:
    with session_scope(db_url) as s:
        job = s.get(Job, job_id)
        if job is None:
            return
        job.state, job.message, job.finished_at, job.eta_at = state, message, utcnow(), None
        if state == "succeeded":
            job.progress = 1.0
        if error:
            job.error = error
            job.result = {**(job.result or {}), "traceback": detail}
        if result is not None:
            job.result = result
