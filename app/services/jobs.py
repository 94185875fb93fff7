"""Jobs: rows the API creates and the workers advance; the task is sent only after the commit."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app import task_client
from app.db import after_commit
from app.job_kinds import KINDS, JobKind, info
from app.models import Job, Project, User
from app.models.base import utcnow
from app.models.job import ACTIVE_STATES
from app.repos import jobs as jobs_repo
from app.services.errors import Invalid, NotFound
from app.services.project_settings import SSL_METHODS


def validate_params(kind: JobKind, params: dict) -> None:
    """Refuse parameters a job would only fail on later, with a message that names them."""
    if kind == JobKind.PRETRAIN:
        method = params.get("method")
        if method is not None and method not in SSL_METHODS:
            raise Invalid(f"unknown self-supervised method {method!r}; known: {', '.join(SSL_METHODS)}")
    bounded = {JobKind.PRETRAIN: (("budget_seconds", 30 * 24 * 3600), ("chunk_seconds", 24 * 3600), ("epochs", 10_000)),
               JobKind.FINETUNE: (("epochs", 1000),)}
    for key, hi in bounded.get(kind, ()):
        value = params.get(key)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)
                                  or not 0 < value <= hi):
            raise Invalid(f"{key} must be a number in (0, {hi}]")
    gain = params.get("min_gain")  # pretrain: how much better a chunk's backbone must be to be used
    if kind == JobKind.PRETRAIN and gain is not None and (not isinstance(gain, int | float) or isinstance(gain, bool)
                                                    or not -1 <= gain <= 1):
        raise Invalid("min_gain must be a number in [-1, 1] (a difference of accuracies)")


def create_job(session: Session, project: Project, user: User | None, kind: JobKind | str, params: dict,
               broker_url: str, *, fold: bool = True) -> tuple[Job, bool]:
    """Queue a job; returns (job, created). A train or embed request folds into one already waiting
    (the waiting one will see every label or sample the newer request would have); a pretrain request
    folds into the project's pretraining under way, queued or running (it goes on by itself, chunk
    after chunk: ``fold_note`` says so). ``fold=False``: a pretraining's own next chunk."""
    kind = JobKind(kind)
    validate_params(kind, params)
    if fold and kind == JobKind.PRETRAIN:
        # A run whose cancel was asked is ending: a new request starts a new run.
        active = jobs_repo.run_under_way(session, project.id, kind)
        if active is not None:
            return active, False
    if KINDS[kind].folds_into_waiting:
        pending = jobs_repo.waiting(session, project.id, kind)
        if pending is not None:
            pending.params = {**pending.params, **params}
            _resend_now_and_then(session, pending, broker_url)
            return pending, False
    job = Job(project_id=project.id, kind=kind.value, params=params, state="queued",
              message="waiting for a worker", created_by=user.id if user else None)
    session.add(job)
    session.flush()
    _send_after_commit(session, job.id, kind, broker_url)
    return job, True


def fold_note(job: Job) -> str:
    """What an answer with an existing job (200, not 201) means, for the one who asked."""
    if job.kind == JobKind.PRETRAIN:
        return (f"a pretraining of this project is already under way (job {job.id}, {job.state}): it goes on "
                "in the background, chunk after chunk, up to the project's pretraining budget, so this request "
                f"joined it and its parameters are not used; cancel job {job.id} first to start another")
    return f"joined the {job.kind} job {job.id} that is still waiting: it will see everything this request would have"


# Once K labels have arrived, every label folds into the waiting train job: sending it each time cost a
# broker round trip per label (a seventh of the API's CPU under 20 annotators); once in a while still
# revives a lost message. When it was last sent is on the row (``jobs.sent_at``), shared by every process.
RESEND_EVERY_S = 30.0


def _resend_now_and_then(session: Session, job: Job, broker_url: str) -> None:
    """Send a waiting job's task again unless it reached the broker in the last ``RESEND_EVERY_S``.

    Sending again is harmless (a job runs once, see the workers' claim) and revives a job whose first
    message was lost with the broker."""
    if job.sent_at is not None and utcnow() - job.sent_at < timedelta(seconds=RESEND_EVERY_S):
        return
    _send_after_commit(session, job.id, job.kind, broker_url)


def _send_after_commit(session: Session, job_id: int, kind: str, broker_url: str) -> None:
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine

    def send() -> None:
        if task_client.send_job(broker_url, job_id, kind):  # a failed send is tried again next time
            jobs_repo.mark_sent(engine, job_id)

    after_commit(session, send)


def list_jobs(session: Session, project: Project, limit: int = 100) -> list[Job]:
    return jobs_repo.for_project(session, project.id, limit)


def get_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def cancel_job(session: Session, job: Job, broker_url: str, stale_seconds: float) -> Job:
    """Cancel a job: a queued one at once; a running one when its worker next reports (it sees the
    flag), unless its heartbeat is older than ``stale_seconds``: its worker is gone, so it ends at once,
    and the jobs of its kind that waited for it are sent again."""
    if job.state not in ACTIVE_STATES:
        raise Invalid(f"job {job.id} is already {job.state}")
    job.cancel_requested = True
    if job.state == "queued":
        job.state = "cancelled"
        job.finished_at = utcnow()
        job.message = "cancelled before it started"
    elif job.heartbeat_at is None or utcnow() - job.heartbeat_at > timedelta(seconds=stale_seconds):
        job.state, job.finished_at, job.eta_at = "cancelled", utcnow(), None
        job.message = "cancelled by an admin (its worker had stopped answering)"
        session.flush()
        for waiting_id in (jobs_repo.queued_behind(session, job.id) or ("", []))[1]:
            _send_after_commit(session, waiting_id, job.kind, broker_url)
    session.flush()
    return job


def eta_seconds(job: Job) -> float | None:
    """Seconds left of a running job, as its worker last estimated them."""
    if job.state != "running" or job.eta_at is None:
        return None
    return max(0.0, (job.eta_at - utcnow()).total_seconds())


def _about(seconds: float) -> str:
    if seconds < 60:
        return "under a minute"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def _pretrain_phrase(job: Job, has_backbone: bool) -> str:
    fraction = (job.figures or {}).get("run_fraction", job.params.get("run_fraction", 0.0))
    first = not has_backbone and int(job.params.get("chunk", 1)) == 1
    head = "first backbone training" if first else f"backbone improving, {fraction:.0%} trained"
    if job.state == "queued":
        return f"{head}; its next round waits for the worker" if not first else f"{head} waits for the worker"
    eta = eta_seconds(job)
    if eta is None:
        return head
    return f"{head}; suggestions may get better in {_about(eta)}"


def _phrase(job: Job, has_backbone: bool) -> str:
    """One job in the expert's words."""
    eta = eta_seconds(job)
    left = f", {_about(eta)} left" if eta is not None else ""
    if job.kind == JobKind.PRETRAIN:
        return _pretrain_phrase(job, has_backbone)
    if job.kind == JobKind.EMBED:
        images = (job.figures or {}).get("images")
        if job.state == "queued" or not images:
            return "new images wait to be embedded" if job.state == "queued" else "embedding new images"
        done = min(images, round(job.progress / 0.9 * images))
        return f"embedding new images: {done:,} of {images:,}"
    if job.kind == JobKind.TRAIN:
        return "model retraining" + (" soon" if job.state == "queued" else left)
    return "backbone fine-tuning on your labels" + (" soon" if job.state == "queued" else left)


def _rank(kind: str) -> int:
    found = info(kind)
    return found.status_rank if found is not None else 9


def project_status(session: Session, project: Project) -> dict:
    """A one-line account of the work under way for the project (the label, teach and import views
    show it), with the jobs behind it."""
    jobs = jobs_repo.active(session, project.id)
    jobs.sort(key=lambda j: (j.state != "running", _rank(j.kind), j.id))
    has_backbone = project.current_backbone_version_id is not None
    line = "; ".join(dict.fromkeys(_phrase(j, has_backbone) for j in jobs)) or "up to date"
    return {"line": line, "busy": bool(jobs),
            "jobs": [{"id": j.id, "kind": j.kind, "state": j.state, "progress": j.progress,
                      "eta_seconds": eta_seconds(j)} for j in jobs]}
