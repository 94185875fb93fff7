"""The Celery app. Broker from settings: SQLite (SQLAlchemy transport) by default, Redis in production."""

from __future__ import annotations

import os
import sys

from celery import Celery
from celery.signals import worker_init, worker_ready
from kombu import Exchange, Queue
from sqlalchemy import select

from app.settings import get_settings
from app.task_client import QUEUE_FOR_KIND, QUEUES


def create_celery() -> Celery:
    settings = get_settings()
    celery = Celery("loupe", broker=settings.broker_url, include=["workers.tasks", "workers.webhooks"])
    celery.conf.update(
        # Named like the queues the API sends to by name (exchange and routing key = queue name).
        task_queues=[Queue(q, Exchange(q), routing_key=q) for q in QUEUES],
        task_default_queue="cpu",
        # Job state lives in our own jobs table; Celery's result backend would be a second truth.
        task_ignore_result=True,
        # A job is acknowledged only when it has finished, so a worker that dies mid-job gives it back
        # to the broker; the runner then sees the stale 'running' row and retries or fails it.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    if settings.broker_url.startswith(("redis://", "rediss://")):
        # An unacknowledged job is redelivered after this long; longer than any pretraining run.
        celery.conf.broker_transport_options = {"visibility_timeout": 6 * 3600}
    return celery


celery_app = create_celery()


def worker_threads(configured: int) -> int:
    """Threads for a worker's torch and BLAS: as configured, else one less than the cores this process
    may use (the API shares the machine), at least one."""
    return configured if configured > 0 else max(1, len(os.sched_getaffinity(0)) - 1)


@worker_init.connect
def _yield_to_the_api(sender=None, **_kwargs) -> None:
    """Training runs at a lower OS priority and on a bounded number of threads, so the expert's calls
    keep their speed while a pretraining runs beside the API (docs/benchmarks.md, "Calls during
    pretraining"). Runs before the pool starts: prefork children inherit both."""
    settings = get_settings()
    if settings.worker_nice > 0:
        os.nice(settings.worker_nice)
    n = worker_threads(settings.worker_threads)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n)  # read by torch (imported later, in the jobs) and by BLAS libraries
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    from threadpoolctl import threadpool_limits

    threadpool_limits(n)  # BLAS already loaded with numpy


@worker_ready.connect
def _resend_queued_jobs(sender=None, **_kwargs) -> None:
    """Jobs accepted while the broker was down (or whose message was lost) are sent when a worker
    starts; claiming makes a duplicate message harmless."""
    from app.db import session_scope
    from app.models import Job
    from workers.jobs.runner import recover_stale_jobs

    settings = get_settings()
    recover_stale_jobs(settings.database_url, settings.job_stale_seconds)
    with session_scope(settings.database_url) as s:
        queued = s.execute(select(Job.id, Job.kind).where(Job.state == "queued")).all()
    for job_id, kind in queued:
        celery_app.send_task("loupe.run_job", args=[job_id], queue=QUEUE_FOR_KIND.get(kind, "cpu"))
