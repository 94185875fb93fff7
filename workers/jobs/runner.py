"""Runs one job row: marks it running, calls the handler for its kind, records the outcome.

How a job reports while it runs is ``workers.jobs.progress``; the job row's queries are
``app.repos.jobs``.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from app.db import session_scope
from app.job_kinds import JobKind, info
from app.models.base import utcnow
from app.repos import jobs as jobs_repo
from app.settings import get_settings
from workers.jobs.progress import JobCancelled, JobInterrupted, JobLost, Progress

log = logging.getLogger(__name__)


Handler = Callable[[int, Progress], dict]

# The jobs this process runs now, each with its run (``app.repos.jobs.Claim``): what a stopping worker
# puts back if they do not end in time.
RUNNING: dict[int, datetime] = {}


def handlers() -> dict[JobKind, Handler]:
    """The handler of every job kind (imported when a job runs: the worker starts without torch)."""
    from workers.jobs import embed, finetune, pretrain, train

    return {JobKind.TRAIN: train.run, JobKind.PRETRAIN: pretrain.run, JobKind.EMBED: embed.run,
            JobKind.FINETUNE: finetune.run}


def claim(db_url: str, job_id: int) -> jobs_repo.Claim | None:
    """Move a queued job to running, in a transaction of its own (``app.repos.jobs.claim``)."""
    with session_scope(db_url) as s:
        return jobs_repo.claim(s, job_id)


def _send_waiting(db_url: str, job_id: int) -> None:
    """Send again the queued jobs of the same project and kind, which waited for this one to finish."""
    with session_scope(db_url) as s:
        found = jobs_repo.queued_behind(s, job_id)
    if found is None:
        return
    kind, waiting = found
    send_jobs(db_url, get_settings().broker_url, [(wid, kind) for wid in waiting])


def recover_stale_jobs(db_url: str, stale_seconds: float, max_attempts: int = 3) -> list[tuple[int, str]]:
    """Jobs whose worker died (no heartbeat for ``stale_seconds``) go back to the queue, or fail after
    ``max_attempts``. Returns the (id, kind) of those to send again."""
    with session_scope(db_url) as s:
        # This process's own jobs are alive, however late their beats (a busy machine, a locked SQLite).
        return jobs_repo.requeue_stale(s, utcnow() - timedelta(seconds=stale_seconds), max_attempts,
                                       alive=set(RUNNING))


def send_jobs(db_url: str, broker_url: str, jobs: list[tuple[int, str]]) -> None:
    """Send the jobs' tasks and stamp those that reached the broker (``jobs.sent_at``)."""
    from app import task_client

    sent = [job_id for job_id, kind in jobs if task_client.send_job(broker_url, job_id, kind)]
    with session_scope(db_url) as s:
        jobs_repo.stamp_sent(s, sent)


def sweep_stale_jobs(db_url: str, broker_url: str, stale_seconds: float) -> list[tuple[int, str]]:
    """Recover the jobs whose worker died and send the re-queued ones again, and send the queued jobs
    whose own send failed (a worker's start, and every ``job_sweep_seconds`` while it runs). Returns
    what it sent."""
    resend = recover_stale_jobs(db_url, stale_seconds)
    for job_id, _ in resend:
        log.warning("job %s lost its worker: sent again", job_id)
    from app import task_client

    with session_scope(db_url) as s:
        unsent = jobs_repo.never_sent(s, utcnow() - timedelta(seconds=task_client.LOST_SEND_AFTER_S))
    for job_id, _ in unsent:
        log.warning("job %s never reached the broker: sent now", job_id)
    send_jobs(db_url, broker_url, resend + unsent)
    return resend + unsent


class StaleSweep(threading.Thread):
    """Recovers jobs whose worker died while this worker runs, not only when a worker starts: a lost
    job is back in the queue (or failed) within ``job_stale_seconds`` plus one interval. It also sends
    the webhook deliveries whose task never reached the broker (``workers.webhooks.send_unqueued``)."""

    def __init__(self, db_url: str, broker_url: str, stale_seconds: float, interval: float) -> None:
        super().__init__(daemon=True, name="stale-job-sweep")
        self.db_url, self.broker_url, self.stale_seconds, self.interval = db_url, broker_url, stale_seconds, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        from workers import webhooks

        while not self.stopped.wait(self.interval):
            try:
                sweep_stale_jobs(self.db_url, self.broker_url, self.stale_seconds)
            except Exception:  # noqa: BLE001 - the next sweep tries again (the database may be restarting)
                log.warning("the sweep for stale jobs failed", exc_info=True)
            try:
                webhooks.send_unqueued(self.db_url, self.broker_url)
            except Exception:  # noqa: BLE001 - as above; a webhook problem never stops the jobs' sweep
                log.warning("the sweep for unqueued webhook deliveries failed", exc_info=True)


def put_back(db_url: str, runs: Iterable[tuple[int, datetime]]) -> None:
    """Running jobs of a worker that stops, (job id, run), go back to the queue
    (``app.repos.jobs.put_back``); the jobs sent when a worker starts include them. A job that finished
    meanwhile keeps its outcome, and one that another run holds now is left to it."""
    with session_scope(db_url) as s:
        for job_id, run in runs:
            jobs_repo.put_back(s, job_id, run)


class Heartbeat(threading.Thread):
    """Stamps the job's heartbeat while it runs, even through long steps that report no progress."""

    def __init__(self, db_url: str, job_id: int, job_run: datetime, interval: float) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.db_url, self.job_id, self.job_run, self.interval = db_url, job_id, job_run, interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                with session_scope(self.db_url) as s:
                    held = jobs_repo.beat(s, self.job_id, self.job_run)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the job itself goes on
                log.warning("heartbeat of job %s failed", self.job_id, exc_info=True)
                continue
            if not held:  # the run stops at its next report (JobLost)
                log.warning("job %s: this run no longer holds it (re-queued after a late heartbeat, claimed "
                            "again, or ended); its heartbeat stops", self.job_id)
                return


def run_job(job_id: int) -> None:
    settings = get_settings()
    db_url = settings.database_url
    claimed = claim(db_url, job_id)
    if claimed is None:
        log.info("job %s is not queued (taken, finished or cancelled); skipping", job_id)
        return
    beat = Heartbeat(db_url, job_id, claimed.run, max(1.0, settings.job_stale_seconds / 4))
    beat.start()
    RUNNING[job_id] = claimed.run
    try:
        _run_claimed(db_url, job_id, claimed)
    finally:
        if RUNNING.get(job_id) == claimed.run:
            del RUNNING[job_id]
        beat.stopped.set()
    try:
        _send_waiting(db_url, job_id)
    except Exception:  # noqa: BLE001 - a worker's start re-sends queued jobs too
        log.warning("could not re-send the jobs waiting for job %s", job_id, exc_info=True)


def _run_claimed(db_url: str, job_id: int, claimed: jobs_repo.Claim) -> None:
    # A long job reports less often: on SQLite each report takes the write lock for a moment, and a
    # worker at low OS priority can be descheduled holding it while the expert's calls wait for it.
    kind_info, run = info(claimed.kind), claimed.run
    progress = Progress(job_id, db_url, run, min_interval=2.0 if kind_info is not None and kind_info.long else 0.5)
    try:
        result = handlers()[JobKind(claimed.kind)](job_id, progress)
    except JobCancelled:
        _finish(db_url, job_id, run, "cancelled", "cancelled by an admin")
    except JobInterrupted:
        log.warning("job %s put back in the queue: this worker is stopping", job_id)
        put_back(db_url, [(job_id, run)])
    except JobLost as exc:
        log.warning("%s: this run stops and writes nothing more", exc)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the job
        log.exception("job %s failed", job_id)
        _finish(db_url, job_id, run, "failed", "failed", error=f"{type(exc).__name__}: {exc}",
                detail=traceback.format_exc(limit=5))
    else:
        _finish(db_url, job_id, run, "succeeded", "done", result=result)


def _finish(db_url: str, job_id: int, run: datetime, state: str, message: str, error: str | None = None,
            detail: str | None = None, result: dict | None = None) -> None:
    """Record the outcome of the run ``run``, then queue the webhook it calls for (a webhook problem never
    changes it). A run that no longer holds the job records nothing and calls no webhook."""
    from workers import webhooks

    with session_scope(db_url) as s:
        job = jobs_repo.finish(s, job_id, run, state, message, error, detail, result)
    if job is None:
        log.warning("job %s: this run no longer holds it (re-queued after a late heartbeat, claimed again, "
                    "or ended); its outcome (%s) is not recorded", job_id, state)
        return
    try:
        if state == "failed":
            webhooks.emit(job["project_id"], "job.failed", {"job_id": job_id, "kind": job["kind"],
                                                            "error": job["error"]})
        elif state == "succeeded" and job["kind"] == JobKind.TRAIN:
            webhooks.emit(job["project_id"], "model_version.ready", {"job_id": job_id, **{
                k: job["result"][k] for k in ("model_version", "labels", "accuracy_estimate") if k in job["result"]}})
    except Exception:  # noqa: BLE001 - a webhook problem never changes a job's outcome
        log.warning("could not record the webhook for job %s", job_id, exc_info=True)
