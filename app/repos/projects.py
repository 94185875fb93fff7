"""Queries on projects, their members and the figures their cards show."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.models import ApiToken, BackboneVersion, EmbeddingVersion, Membership, ModelVersion, Project, User

_Row = TypeVar("_Row", Project, Membership)

# Built once (with its cache key): building it on every call cost more CPU than running it.
_ACCESS = (
    select(ApiToken, User, Project, Membership.role)
    .join(User, User.id == ApiToken.user_id)
    .outerjoin(Project, Project.id == bindparam("pid"))
    .outerjoin(Membership, (Membership.project_id == bindparam("pid")) & (Membership.user_id == User.id))
    .where(ApiToken.token_hash == bindparam("digest"))
)


def get(session: Session, project_id: int) -> Project | None:
    return session.get(Project, project_id)


def with_role(session: Session, project_id: int, user_id: int) -> tuple[Project | None, str | None]:
    """The project and the user's membership role in one round trip (every queue and label call asks)."""
    found = session.execute(
        select(Project, Membership.role).outerjoin(
            Membership, (Membership.project_id == Project.id) & (Membership.user_id == user_id))
        .where(Project.id == project_id)
    ).first()
    return (found[0], found[1]) if found is not None else (None, None)


def access_by_digest(session: Session, digest: str, project_id: int) \
        -> tuple[ApiToken, User, Project | None, str | None] | None:
    """The token, its user, the project and the user's membership role in one round trip."""
    found = session.execute(_ACCESS, {"pid": project_id, "digest": digest}).first()
    return None if found is None else (found[0], found[1], found[2], found[3])


def role_of(session: Session, project_id: int, user_id: int) -> str | None:
    return session.scalar(
        select(Membership.role).where(Membership.project_id == project_id, Membership.user_id == user_id))


def all_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.id)))


def with_roles_of(session: Session, user_id: int) -> list[tuple[Project, str]]:
    """The projects the user is a member of, with the role in each."""
    q = (
        select(Project, Membership.role)
        .join(Membership, Membership.project_id == Project.id)
        .where(Membership.user_id == user_id)
        .order_by(Project.id)
    )
    return [(p, r) for p, r in session.execute(q)]


def name_taken(session: Session, name: str) -> bool:
    return session.scalar(select(Project.id).where(Project.name == name)) is not None


def by_name(session: Session, name: str) -> Project | None:
    return session.scalar(select(Project).where(Project.name == name))


def add(session: Session, row: _Row) -> _Row:
    session.add(row)
    session.flush()
    return row


def membership(session: Session, project_id: int, user_id: int) -> Membership | None:
    return session.scalar(
        select(Membership).where(Membership.project_id == project_id, Membership.user_id == user_id))


def membership_by_username(session: Session, project_id: int, username: str) -> Membership | None:
    return session.scalar(
        select(Membership).join(User, User.id == Membership.user_id)
        .where(Membership.project_id == project_id, User.username == username))


def members(session: Session, project_id: int) -> list[tuple[str, str]]:
    """(username, role) of every member, by username."""
    q = (
        select(User.username, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.project_id == project_id)
        .order_by(User.username)
    )
    return [(u, r) for u, r in session.execute(q)]


def current_models(session: Session, model_version_ids: list[int]) -> list[tuple[int, dict | None, int]]:
    """(project id, metrics, number in the project) of each of these model versions."""
    rows = session.execute(select(ModelVersion.project_id, ModelVersion.metrics, ModelVersion.number)
                           .where(ModelVersion.id.in_(model_version_ids)))
    return [(pid, m, number) for pid, m, number in rows]


def newest_versions(session: Session, model: type[BackboneVersion | EmbeddingVersion | ModelVersion],
                    project_id: int, limit: int) -> list[Any]:  # Any: the rows of whichever table was asked
    """A project's newest ``limit`` backbone, embedding or model versions, newest first."""
    return list(session.scalars(select(model).where(model.project_id == project_id)
                                .order_by(model.id.desc()).limit(limit)))
