"""Send tasks to the workers by name. The API never imports the worker code (or torch)."""

from __future__ import annotations

import logging
from functools import lru_cache

from celery import Celery

from app.job_kinds import CPU, LONG_QUEUES, QUEUES, SHORT_QUEUES, queue_for

__all__ = ["DELIVER_WEBHOOK_TASK", "LONG_QUEUES", "LOST_SEND_AFTER_S", "QUEUES", "RUN_JOB_TASK", "SHORT_QUEUES",
           "broker_reachable", "prepare_broker", "send_delivery", "send_job"]

log = logging.getLogger(__name__)

# The one task the API sends: workers/tasks.py registers it under this name (the API never imports it).
RUN_JOB_TASK = "loupe.run_job"
# A webhook delivery's task (workers/webhooks.py), sent by the workers.
DELIVER_WEBHOOK_TASK = "loupe.deliver_webhook"
# A send follows its row's commit within milliseconds: a job or webhook delivery still unsent this long
# after its creation had its send fail, and the workers' sweep sends it (workers/jobs/runner.py).
LOST_SEND_AFTER_S = 5.0


@lru_cache(maxsize=4)
def _client(broker_url: str) -> Celery:
    client = Celery("loupe-api", broker=broker_url)
    client.conf.broker_connection_retry_on_startup = False
    client.conf.broker_connection_max_retries = 1
    if broker_url.startswith(("redis://", "rediss://")):
        # Fail fast when Redis is down: the job stays queued and is re-sent later.
        client.conf.broker_transport_options = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
    return client


def send_job(broker_url: str, job_id: int, kind: str) -> bool:
    """Queue the job's task; False if the broker cannot be reached (the job stays queued)."""
    try:
        _client(broker_url).send_task(
            RUN_JOB_TASK, args=[job_id], queue=queue_for(kind), retry=False
        )
        return True
    except Exception:  # noqa: BLE001 - any broker failure means "not sent yet"
        log.warning("could not send job %s to the broker; it stays queued", job_id, exc_info=True)
        return False


def send_delivery(broker_url: str, delivery_id: int) -> None:
    """Queue a webhook delivery's task; raises what the broker raised (the delivery waits for a sweep)."""
    _client(broker_url).send_task(DELIVER_WEBHOOK_TASK, args=[delivery_id], queue=CPU, retry=False)


def broker_reachable(broker_url: str, timeout: float) -> bool:
    try:
        with _client(broker_url).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:  # noqa: BLE001
        return False


def prepare_broker(broker_url: str) -> None:
    """Create the SQLite broker's tables once, before `loupe serve` starts its processes: kombu's
    SQLAlchemy transport creates them at each process's first use, and processes that start together
    race (one of them gets "table kombu_queue already exists": a worker reconnects, but the API's send
    of a job fails). Nothing to do for Redis."""
    if not broker_url.startswith("sqla+"):
        return
    with _client(broker_url).connection_for_write() as conn:
        conn.default_channel.session  # noqa: B018 - the transport's first session creates its tables
