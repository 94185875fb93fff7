"""Send tasks to the workers by name. The API never imports the worker code (or torch)."""

from __future__ import annotations

import logging
from functools import lru_cache

from celery import Celery

log = logging.getLogger(__name__)

# Embedding wants an accelerator, fitting and scoring are CPU work: both are short, and the expert waits
# for them. Pretraining chunks and fine-tuning are long: they have their own queue, which `loupe serve`
# gives its own worker process, so a short job never waits behind them (docs/architecture.md, Jobs).
QUEUE_FOR_KIND = {"pretrain": "long", "finetune": "long", "embed": "gpu", "train": "cpu"}
QUEUES = ("gpu", "cpu", "long")
SHORT_QUEUES, LONG_QUEUES = "gpu,cpu", "long"
RUN_JOB_TASK = "loupe.run_job"


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
            RUN_JOB_TASK, args=[job_id], queue=QUEUE_FOR_KIND.get(kind, "cpu"), retry=False
        )
        return True
    except Exception:  # noqa: BLE001 - any broker failure means "not sent yet"
        log.warning("could not send job %s to the broker; it stays queued", job_id, exc_info=True)
        return False


def broker_reachable(broker_url: str, timeout: float) -> bool:
    try:
        with _client(broker_url).connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:  # noqa: BLE001
        return False
