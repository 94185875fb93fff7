"""Jobs that jobs start: the follow-up train after new embeddings, sent after the commit."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.models import Project
from app.services.jobs import create_job
from app.settings import get_settings


def queue_train(session: Session, project: Project, reason: str) -> None:
    create_job(session, project, None, "train", {"reason": reason}, get_settings().broker_url)
