"""Thin tasks: take ids, hand over to the job runner."""

from __future__ import annotations

from workers.celery_app import celery_app
from workers.jobs.runner import run_job as _run_job


@celery_app.task(name="loupe.run_job")
def run_job(job_id: int) -> None:
    _run_job(job_id)
