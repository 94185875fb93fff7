"""What a worker process does when it starts: yield the CPU to the API, recover the jobs whose worker
died, send the jobs still queued, and start the sweep that recovers jobs whose worker dies later.
Connected to Celery's signals; the worker imports this module (``include`` in ``workers.celery_app``)
before it sends them."""

from __future__ import annotations

import logging
import os
import sys
import threading

from celery.signals import worker_init, worker_ready, worker_shutting_down

from app.db import session_scope
from app.repos import jobs as jobs_repo
from app.settings import get_settings
from workers.jobs import runner
from workers.jobs.progress import STOPPING
from workers.jobs.runner import StaleSweep, recover_stale_jobs


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
    settings = get_settings()
    recover_stale_jobs(settings.database_url, settings.job_stale_seconds)
    with session_scope(settings.database_url) as s:
        queued = jobs_repo.all_queued(s)
    runner.send_jobs(settings.database_url, settings.broker_url, queued)
    StaleSweep(settings.database_url, settings.broker_url, settings.job_stale_seconds,
               settings.job_sweep_seconds).start()


# `loupe serve` gives its workers 20 s to stop before it kills them (app/cli.py): a job still running
# this long after the stop was asked is put back in the queue before that.
PUT_BACK_AFTER_S = 15.0


@worker_shutting_down.connect
def _stop_running_jobs(sender=None, **_kwargs) -> None:
    """A warm shutdown does not wait for a long job to end: the job stops at its next progress report
    and goes back to the queue (``workers.jobs.progress.JobInterrupted``). A job that reports nothing
    for ``PUT_BACK_AFTER_S`` is put back anyway, so a kill after it leaves no job "running"."""
    STOPPING.set()
    timer = threading.Timer(PUT_BACK_AFTER_S, _put_back_late)
    timer.daemon = True  # the process ends as soon as the worker has stopped
    timer.start()


def _put_back_late() -> None:
    left = sorted(runner.RUNNING.items())
    if left:
        logging.getLogger(__name__).warning("jobs %s did not stop in time: put back in the queue",
                                            [job_id for job_id, _ in left])
        runner.put_back(get_settings().database_url, left)
