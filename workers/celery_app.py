"""The Celery app. Broker from settings: SQLite (SQLAlchemy transport) by default, Redis in production.

Only the app's configuration: the tasks (``workers.tasks``, ``workers.webhooks``) and what a worker
process does when it starts (``workers.startup``) import it, and it imports none of them (they are
named in ``include``, which the worker imports before it starts)."""

from __future__ import annotations

from celery import Celery
from kombu import Exchange, Queue

from app.job_kinds import CPU, QUEUES
from app.settings import get_settings


def create_celery() -> Celery:
    settings = get_settings()
    celery = Celery("loupe", broker=settings.broker_url,
                    include=["workers.tasks", "workers.webhooks", "workers.startup"])
    celery.conf.update(
        # Named like the queues the API sends to by name (exchange and routing key = queue name).
        task_queues=[Queue(q, Exchange(q), routing_key=q) for q in QUEUES],
        task_default_queue=CPU,
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
