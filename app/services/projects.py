"""Projects, membership, and the rule of who may see and do what in a project."""

from __future__ import annotations

from typing import Literal

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from app.models import ApiToken, Membership, ModelVersion, Project, User
from app.security import token_digest
from app.services import auth
from app.services.errors import Conflict, Forbidden, Invalid, NotFound
from app.services.jobs import create_job
from app.services.project_settings import effective_settings

Need = Literal["view", "label", "review", "admin"]


def role_in(session: Session, user: User, project_id: int) -> str | None:
    if user.is_admin:
        return "admin"
    return session.scalar(
        select(Membership.role).where(Membership.project_id == project_id, Membership.user_id == user.id)
    )


def get_project_for(session: Session, user: User, project_id: int, need: Need = "view") -> tuple[Project, str]:
    """The project and the caller's role, or 404 if they may not know it exists, 403 if they may
    see it but not do this."""
    if user.is_admin:
        project, role = session.get(Project, project_id), "admin"
    else:
        # The project and the caller's membership in one round trip (every queue and label call asks).
        found = session.execute(
            select(Project, Membership.role).outerjoin(
                Membership, (Membership.project_id == Project.id) & (Membership.user_id == user.id))
            .where(Project.id == project_id)
        ).first()
        project, role = (found[0], found[1]) if found is not None else (None, None)
    return _allowed(project, role, project_id, need)


# Built once (with its cache key): building it on every call cost more CPU than running it.
_ACCESS = (
    select(ApiToken, User, Project, Membership.role)
    .join(User, User.id == ApiToken.user_id)
    .outerjoin(Project, Project.id == bindparam("pid"))
    .outerjoin(Membership, (Membership.project_id == bindparam("pid")) & (Membership.user_id == User.id))
    .where(ApiToken.token_hash == bindparam("digest"))
)


def access_by_token(session: Session, token: str, project_id: int, need: Need) -> tuple[User, Project, str] | None:
    """``user_for_token`` and ``get_project_for`` in one round trip, for the calls every annotator makes
    many times a minute (the queue, labels). None if the token is not valid (a 401)."""
    found = session.execute(_ACCESS, {"pid": project_id, "digest": token_digest(token)}).first()
    user = None if found is None else auth.token_user(found[0], found[1])
    if user is None:
        return None
    project, role = _allowed(found[2], "admin" if user.is_admin else found[3], project_id, need)
    return user, project, role


def _allowed(project: Project | None, role: str | None, project_id: int, need: Need) -> tuple[Project, str]:
    if project is None or role is None:
        raise NotFound(f"project {project_id} not found")
    if need == "admin" and role != "admin":
        raise Forbidden("this action needs an admin account")
    if need == "label" and role not in ("admin", "annotator", "reviewer"):
        raise Forbidden("viewers cannot label; ask an admin to make you an annotator")
    if need == "review" and role not in ("admin", "reviewer"):
        raise Forbidden("only an admin or a project reviewer resolves reviews")
    return project, role


def visible_projects(session: Session, user: User) -> list[tuple[Project, str]]:
    if user.is_admin:
        return [(p, "admin") for p in session.scalars(select(Project).order_by(Project.id))]
    q = (
        select(Project, Membership.role)
        .join(Membership, Membership.project_id == Project.id)
        .where(Membership.user_id == user.id)
        .order_by(Project.id)
    )
    return [(p, r) for p, r in session.execute(q)]


def create_project(session: Session, name: str, classes: list[str], description: str = "",
                   settings: dict | None = None) -> Project:
    if len(set(classes)) != len(classes):
        dupes = sorted({c for c in classes if classes.count(c) > 1})
        raise Invalid(f"class names must be unique; repeated: {dupes}")
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"a project named '{name}' already exists")
    project = Project(name=name, classes=list(classes), description=description,
                      settings=effective_settings(settings or {}))
    session.add(project)
    session.flush()
    return project


def find_project(session: Session, ref: str) -> Project | None:
    """By id or by name (the CLI accepts either)."""
    if ref.isdigit():
        found = session.get(Project, int(ref))
        if found is not None:
            return found
    return session.scalar(select(Project).where(Project.name == ref))


def add_member(session: Session, project: Project, username: str, role: str) -> Membership:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user named '{username}'")
    membership = session.scalar(
        select(Membership).where(Membership.project_id == project.id, Membership.user_id == user.id)
    )
    if membership is None:
        membership = Membership(project_id=project.id, user_id=user.id, role=role)
        session.add(membership)
    else:
        membership.role = role
    session.flush()
    return membership


def members(session: Session, project: Project) -> list[tuple[str, str]]:
    q = (
        select(User.username, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.project_id == project.id)
        .order_by(User.username)
    )
    return [(u, r) for u, r in session.execute(q)]


def update_project(session: Session, project: Project, description: str | None, add_classes: list[str],
                   settings_patch: dict) -> Project:
    if description is not None:
        project.description = description
    clash = sorted(set(add_classes) & set(project.classes))
    if clash or len(set(add_classes)) != len(add_classes):
        raise Invalid(f"classes already exist or repeat: {clash or add_classes}")
    if add_classes:
        project.classes = [*project.classes, *add_classes]
    if settings_patch:
        project.settings = effective_settings({**(project.settings or {}), **settings_patch})
    session.flush()
    return project


def embedding_settings_changed(session: Session, project: Project, before: dict, broker_url: str) -> None:
    """A new embedding layer takes effect by re-embedding every sample under the current backbone (the
    embed job does not reuse rows made with another layer choice)."""
    now = effective_settings(project.settings)
    if now["embedding_layer"] != before.get("embedding_layer") and project.current_backbone_version_id:
        create_job(session, project, None, "embed", {"reason": f"embedding layer {now['embedding_layer']}"},
                   broker_url)


def accuracy_estimates(session: Session, projects: list[Project]) -> dict[int, dict]:
    """The current model of each project that has one: its number in the project, and its audit
    accuracy estimate with the interval and the audit labels behind it (a card that says "about 100 %"
    from 3 audit labels, without its interval, misleads)."""
    ids = [p.current_model_version_id for p in projects if p.current_model_version_id]
    if not ids:
        return {}
    rows = session.execute(select(ModelVersion.project_id, ModelVersion.metrics, ModelVersion.number)
                           .where(ModelVersion.id.in_(ids)))
    return {pid: {"estimate": (m or {}).get("accuracy_estimate"), "number": number,
                  "ci": [m["ci_low"], m["ci_high"]] if m and m.get("ci_low") is not None else None,
                  "audit_labels": (m or {}).get("audit_labels", 0)} for pid, m, number in rows}


def remove_member(session: Session, project: Project, username: str) -> None:
    membership = session.scalar(
        select(Membership).join(User, User.id == Membership.user_id)
        .where(Membership.project_id == project.id, User.username == username)
    )
    if membership is None:
        raise NotFound(f"'{username}' is not a member of project {project.id}")
    session.delete(membership)
    session.flush()
