"""Runs one job row: marks it running, calls the handler for its kind, records the outcome.

Progress is written through its own short transactions so an admin sees it while the job runs.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable

from sqlalchemy import select, update

from app.db import session_scope
from app.models import Job
from app.models.base import utcnow
from app.settings import get_settings

log = logging.getLogger(__name__)


class JobCancelled(Exception):
    pass


class Progress:
    """Report (fraction, message) into the jobs row, at most a few times a second."""

    def __init__(self, job_id: int, db_url: str, min_interval: float = 0.5) -> None:
        self.job_id, self.db_url, self.min_interval = job_id, db_url, min_interval
        self._last = 0.0

    def __call__(self, fraction: float, message: str = "", force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        with session_scope(self.db_url) as s:
            job = s.get(Job, self.job_id)
            if job is None:
                return
            job.progress = max(0.0, min(1.0, float(fraction)))
            job.message = message[:2000]
            job.heartbeat_at = utcnow()
            if job.cancel_requested:
                raise JobCancelled


Handler = Callable[[int, Progress], dict]


def _handlers() -> dict[str, Handler]:
    from workers.jobs import train

    return {"train": train.run, "pretrain": _not_yet("pretrain"), "embed": _not_yet("embed")}


def _not_yet(kind: str) -> Handler:
    def run(_job_id: int, _progress: Progress) -> dict:
        raise NotImplementedError(f"{kind} jobs are not available in this version of Loupe")

    return run


def claim(db_url: str, job_id: int) -> str | None:
    """Move a queued job to running; None if someone else has it (or it is finished or cancelled).

    A conditional UPDATE, so a task delivered twice (a re-send, a redelivery) runs the job once.
    """
    now = utcnow()
    with session_scope(db_url) as s:
        res = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "queued")
            .values(state="running", started_at=now, heartbeat_at=now, message="started")
        )
        if res.rowcount != 1:
            return None
        return s.scalar(select(Job.kind).where(Job.id == job_id))


def run_job(job_id: int) -> None:
    db_url = get_settings().database_url
    kind = claim(db_url, job_id)
    if kind is None:
        log.info("job %s is not queued (taken, finished or cancelled); skipping", job_id)
        return
    progress = Progress(job_id, db_url)
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
    with session_scope(db_url) as s:
        job = s.get(Job, job_id)
        if job is None:
            return
        job.state, job.message, job.finished_at = state, message, utcnow()
        if state == "succeeded":
            job.progress = 1.0
        if error:
            job.error = error
            job.result = {**(job.result or {}), "traceback": detail}
        if result is not None:
            job.result = result
