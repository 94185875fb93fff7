"""Queries of the jobs that make a project's representation (embed, pretrain, fine-tune, registered
backbones): the samples as they read them, the embedding and backbone versions, and the switch.

Functions take the caller's session and never commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import BackboneVersion, EmbeddingVersion, Project, RegisteredBackbone, Sample


def samples(session: Session, project_id: int) -> Sequence[tuple[int, str, str | None, bool]]:
    """(id, storage_key, label, is_audit) of every sample of the project, by id."""
    return session.execute(select(Sample.id, Sample.storage_key, Sample.label, Sample.is_audit)
                           .where(Sample.project_id == project_id).order_by(Sample.id)).tuples().all()


def some_sizes(session: Session, project_id: int, limit: int = 2000) -> list[tuple[int, int]]:
    """(width, height) of the project's first ``limit`` samples, as stored at import."""
    return [(w, h) for w, h in session.execute(select(Sample.width, Sample.height).where(
        Sample.project_id == project_id).order_by(Sample.id).limit(limit))]


@dataclass(frozen=True)
class ImageRow:
    """What locating a sample's working copy needs."""

    id: int
    content_hash: str
    storage_key: str
    mode: str
    width: int
    height: int


def image_rows(session: Session, project_id: int, ids: Sequence[int]) -> dict[int, ImageRow]:
    """The rows of ``ids`` that are samples of the project, by id."""
    cols = select(Sample.id, Sample.content_hash, Sample.storage_key, Sample.mode, Sample.width, Sample.height)
    found: dict[int, ImageRow] = {}
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), 1000):  # bounded IN lists: a few new samples of a big project
        part = wanted[start:start + 1000]
        found |= {r[0]: ImageRow(*r) for r in session.execute(
            cols.where(Sample.project_id == project_id, Sample.id.in_(part)))}
    return found


def checkpoint_key(session: Session, backbone_version_id: int | None) -> str | None:
    """Where the backbone version's checkpoint is stored (None: no backbone, pixels)."""
    if backbone_version_id is None:
        return None
    return session.scalar(select(BackboneVersion.checkpoint_key).where(BackboneVersion.id == backbone_version_id))


def backbone_params(session: Session, backbone_version_id: int) -> dict[str, Any]:
    return session.scalar(select(BackboneVersion.params).where(BackboneVersion.id == backbone_version_id)) or {}


def detached_backbone_version(session: Session, backbone_version_id: int | None) -> BackboneVersion | None:
    """The row, usable after the session closes."""
    if backbone_version_id is None:
        return None
    bv = session.get(BackboneVersion, backbone_version_id)
    if bv is not None:
        session.expunge(bv)
    return bv


def detached_registered(session: Session, backbone_id: int) -> RegisteredBackbone | None:
    """The registered backbone's row, usable after the session closes."""
    row = session.get(RegisteredBackbone, backbone_id)
    if row is not None:
        session.expunge(row)
    return row


def add_embedding_version(session: Session, **fields: Any) -> int:
    """Record an embedding version whose files are already complete; returns its id."""
    ev = EmbeddingVersion(**fields)
    session.add(ev)
    session.flush()
    return ev.id


def add_backbone_version(session: Session, **fields: Any) -> int:
    """Record a backbone version whose checkpoint is already saved; returns its id."""
    bv = BackboneVersion(**fields)
    session.add(bv)
    session.flush()
    return bv.id


def use_embedding(session: Session, project_id: int, ev_id: int, made_under: int | None) -> Project | None:
    """Make ``ev_id`` the project's embedding if its backbone is still ``made_under`` (another job may
    have switched the backbone meanwhile; the version is then stale). Returns the project if it did."""
    project = session.get(Project, project_id)
    assert project is not None
    if project.current_backbone_version_id != made_under:
        return None
    project.current_embedding_version_id = ev_id
    return project


def use_backbone(session: Session, project_id: int, bv_id: int, ev_id: int, *, only_if_backbone: bool,
                 replacing: int | None = None) -> Project | None:
    """Make the backbone and its embedding the project's, in the caller's transaction; with
    ``only_if_backbone``, only if the project still has ``replacing``. Returns the project if it did."""
    project = session.get(Project, project_id)
    assert project is not None and session.get(EmbeddingVersion, ev_id) is not None
    if only_if_backbone and project.current_backbone_version_id != replacing:
        return None
    project.current_backbone_version_id = bv_id
    project.current_embedding_version_id = ev_id
    return project
