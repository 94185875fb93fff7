"""Queries on registered backbones (the ``backbones`` table) and the project versions they export from."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import BackboneVersion, RegisteredBackbone, Sample


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
