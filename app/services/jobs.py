"""Jobs: rows the API creates and the workers advance; the task is sent only after the commit."""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import task_client
from app.db import after_commit
from app.models import Job, Project, User
from app.models.base import utcnow
from app.models.job import ACTIVE_STATES
from app.services.errors import Invalid, NotFound
from app.services.project_settings import SSL_METHODS


def validate_params(kind: str, params: dict) -> None:
    """Refuse parameters a job would only fail on later, with a message that names them."""
    if kind == "pretrain":
        method = params.get("method")
        if method is not None and method not in SSL_METHODS:
            raise Invalid(f"unknown self-supervised method {method!r}; known: {', '.join(SSL_METHODS)}")
    bounded = {"pretrain": (("budget_seconds", 24 * 3600), ("epochs", 10_000)), "finetune": (("epochs", 1000),)}
    for key, hi in bounded.get(kind, ()):
        value = params.get(key)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)
                                  or not 0 < value <= hi):
            raise Invalid(f"{key} must be a number in (0, {hi}]")


def create_job(session: Session, project: Project, user: User | None, kind: str, params: dict,
               broker_url: str) -> tuple[Job, bool]:
    """Queue a job; returns (job, created). A train or embed request folds into one already waiting
    (the waiting one will see every label or sample the newer request would have)."""
    validate_params(kind, params)
    if kind in ("train", "embed"):
        pending = session.scalar(
            select(Job).where(Job.project_id == project.id, Job.kind == kind, Job.state == "queued")
            .order_by(Job.id.desc())
        )
        if pending is not None:
            pending.params = {**pending.params, **params}
            # Sending again is harmless (a job runs once, see workers' claim) and revives a job whose
            # first message was lost with the broker.
            pending_id = pending.id
            after_commit(session, lambda: _resend(broker_url, pending_id, kind))
            return pending, False
    job = Job(project_id=project.id, kind=kind, params=params, state="queued", message="waiting for a worker",
              created_by=user.id if user else None)
    session.add(job)
    session.flush()
    job_id = job.id
    after_commit(session, lambda: task_client.send_job(broker_url, job_id, kind))
    return job, True


# When this process last sent each waiting job successfully. Once K labels have arrived, every label
# folds into the waiting train job: sending it each time cost a broker round trip per label (a seventh
# of the API's CPU under 20 annotators); once in a while still revives a lost message.
_RESENT: dict[tuple[str, int], float] = {}
RESEND_EVERY_S = 30.0


def _resend(broker_url: str, job_id: int, kind: str) -> None:
    now = time.monotonic()
    key = (broker_url, job_id)
    if now - _RESENT.get(key, -RESEND_EVERY_S) < RESEND_EVERY_S:
        return
    if task_client.send_job(broker_url, job_id, kind):  # a failed send is tried again next time
        if len(_RESENT) > 10_000:
            _RESENT.clear()
        _RESENT[key] = now


def list_jobs(session: Session, project: Project, limit: int = 100) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.project_id == project.id).order_by(Job.id.desc()).limit(limit)))


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def cancel_job(session: Session, job: Job) -> Job:
    if job.state not in ACTIVE_STATES:
        raise Invalid(f"job {job.id} is already {job.state}")
    job.cancel_requested = True
    if job.state == "queued":
        job.state = "cancelled"
        job.finished_at = utcnow()
        job.message = "cancelled before it started"
    session.flush()
    return job
