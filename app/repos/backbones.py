"""Queries on registered backbones (the ``backbones`` table) and the project versions they export from."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import BackboneVersion, Project, RegisteredBackbone, Sample


def get(session: Session, backbone_id: int) -> RegisteredBackbone | None:
    return session.get(RegisteredBackbone, backbone_id)


def name_taken(session: Session, name: str) -> bool:
    return session.scalar(select(RegisteredBackbone.id).where(RegisteredBackbone.name == name)) is not None


def list_all(session: Session) -> list[RegisteredBackbone]:
    return list(session.scalars(select(RegisteredBackbone).order_by(RegisteredBackbone.id)))


def project_version(session: Session, project_id: int, version_id: int) -> BackboneVersion | None:
    bv = session.get(BackboneVersion, version_id)
    return bv if bv is not None and bv.project_id == project_id else None


def has_samples(session: Session, project_id: int) -> bool:
    return bool(session.scalar(select(func.count()).select_from(
        select(Sample.id).where(Sample.project_id == project_id).limit(1).subquery())))


def add(session: Session, row: RegisteredBackbone) -> RegisteredBackbone:
    session.add(row)
    session.flush()
    return row


def projects_choosing(session: Session, backbone_id: int) -> list[str]:
    """The names of the projects whose setting ``backbone`` names this backbone. The setting lives in the
    projects' JSON settings, read here in Python: the projects table is small (one row a project), and a JSON
    path query differs between SQLite and PostgreSQL."""
    rows = session.execute(select(Project.name, Project.settings).order_by(Project.id))
    return [name for name, settings in rows if (settings or {}).get("backbone") == backbone_id]


def file_shared(session: Session, file_key: str, but: int) -> bool:
    """Whether another registered backbone keeps the same stored file (the same bytes are stored once)."""
    return session.scalar(select(RegisteredBackbone.id).where(
        RegisteredBackbone.file_key == file_key, RegisteredBackbone.id != but).limit(1)) is not None


def delete(session: Session, row: RegisteredBackbone) -> None:
    session.delete(row)
    session.flush()
