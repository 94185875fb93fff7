"""Thin tasks: take ids, hand over to the job runner."""

from __future__ import annotations

from app.task_client import RUN_JOB_TASK
from workers.celery_app import celery_app
from workers.jobs.runner import run_job as _run_job


@celery_app.task(name=RUN_JOB_TASK)
def run_job(job_id: int) -> None:
    _run_job(job_id)
