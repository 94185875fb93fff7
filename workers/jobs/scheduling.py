"""Jobs that jobs start: the follow-up train after new embeddings, a pretraining's next chunk; sent
after the commit."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.job_kinds import JobKind
from app.models import Project
from app.services.jobs import create_job
from app.settings import get_settings


def queue_train(session: Session, project: Project, reason: str) -> None:
    create_job(session, project, None, JobKind.TRAIN, {"reason": reason}, get_settings().broker_url)


def queue_pretrain_chunk(session: Session, project: Project, params: dict) -> int:
    """The next chunk of a pretraining run (never folded into the running chunk that queues it)."""
    job, _ = create_job(session, project, None, JobKind.PRETRAIN, params, get_settings().broker_url, fold=False)
    job.message = f"chunk {params.get('chunk')} waits for its turn on the long-jobs worker"
    session.flush()
    return job.id
