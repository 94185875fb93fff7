"""Projects, membership, and the rule of who may see and do what in a project."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.orm import Session

from app.models import BackboneVersion, EmbeddingVersion, Membership, ModelVersion, Project, User
from app.repos import projects as project_repo
from app.repos import samples as samples_repo
from app.repos import users as user_repo
from app.security import token_digest
from app.services import auth, overlap
from app.services.errors import Conflict, Forbidden, Invalid, NotFound, listed
from app.services.jobs import create_job
from app.services.project_settings import effective_settings

Need = Literal["view", "label", "review", "admin"]


def role_in(session: Session, user: User, project_id: int) -> str | None:
    if user.is_admin:
        return "admin"
    return project_repo.role_of(session, project_id, user.id)


def get_project_for(session: Session, user: User, project_id: int, need: Need = "view") -> tuple[Project, str]:
    """The project and the caller's role, or 404 if they may not know it exists, 403 if they may
    see it but not do this."""
    role: str | None = "admin"
    if user.is_admin:
        project = project_repo.get(session, project_id)
    else:
        project, role = project_repo.with_role(session, project_id, user.id)
    return _allowed(project, role, project_id, need)


def access_by_token(session: Session, token: str, project_id: int, need: Need) -> tuple[User, Project, str] | None:
    """``user_for_token`` and ``get_project_for`` in one round trip, for the calls every annotator makes
    many times a minute (the queue, labels). None if the token is not valid (a 401)."""
    found = project_repo.access_by_digest(session, token_digest(token), project_id)
    if found is None:
        return None
    token_row, user_row, project_row, member_role = found
    user = auth.token_user(token_row, user_row)
    if user is None:
        return None
    project, role = _allowed(project_row, "admin" if user.is_admin else member_role, project_id, need)
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
        return [(p, "admin") for p in project_repo.all_projects(session)]
    return project_repo.with_roles_of(session, user.id)


PROJECT_KINDS = ("image", "text")


def create_project(session: Session, name: str, classes: list[str], description: str = "",
                   settings: dict | None = None, kind: str = "image") -> Project:
    if kind not in PROJECT_KINDS:
        raise Invalid(f"a project's kind is {listed(PROJECT_KINDS, last='or')}, not '{kind}'")
    if len(set(classes)) != len(classes):
        dupes = sorted({c for c in classes if classes.count(c) > 1})
        raise Invalid(f"class names must be unique; repeated: {listed(dupes)}")
    if project_repo.name_taken(session, name):
        raise Conflict(f"a project named '{name}' already exists")
    project = Project(name=name, classes=list(classes), description=description,
                      settings=effective_settings(settings or {}, kind), kind=kind)
    overlap.check_classes(project)
    return project_repo.add(session, project)


def find_project(session: Session, ref: str) -> Project | None:
    """By id or by name (the CLI accepts either)."""
    if ref.isdigit():
        found = project_repo.get(session, int(ref))
        if found is not None:
            return found
    return project_repo.by_name(session, ref)


def add_member(session: Session, project: Project, username: str, role: str) -> Membership:
    user = user_repo.by_username(session, username)
    if user is None:
        raise NotFound(f"no user named '{username}'")
    membership = project_repo.membership(session, project.id, user.id)
    if membership is None:
        return project_repo.add(session, Membership(project_id=project.id, user_id=user.id, role=role))
    membership.role = role
    session.flush()
    return membership


def members(session: Session, project: Project) -> list[tuple[str, str]]:
    return project_repo.members(session, project.id)


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
        before = overlap.Rule(project)
        project.settings = effective_settings({**(project.settings or {}), **settings_patch})
        overlap.check_classes(project)
        session.flush()
        overlap.settings_changed(session, project, before)
    session.flush()
    return project


def embedding_settings_changed(session: Session, project: Project, before: dict, broker_url: str) -> None:
    """A new embedding layer takes effect by re-embedding every sample under the current backbone (the
    embed job does not reuse rows made with another layer choice)."""
    now = effective_settings(project.settings)
    if now["embedding_layer"] != before.get("embedding_layer") and project.current_backbone_version_id:
        create_job(session, project, None, "embed", {"reason": f"embedding layer {now['embedding_layer']}"},
                   broker_url)


def sample_counts_of(session: Session, project_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(sample_count, labelled_count) of each project that has samples."""
    return samples_repo.counts(session, project_ids)


def sample_counts(session: Session, project_id: int) -> tuple[int, int]:
    return samples_repo.counts(session, [project_id]).get(project_id, (0, 0))


def accuracy_estimates(session: Session, projects: list[Project]) -> dict[int, dict]:
    """The current model of each project that has one: its number in the project, and its audit
    accuracy estimate with the interval and the audit labels behind it (a card that says "about 100 %"
    from 3 audit labels, without its interval, misleads)."""
    ids = [p.current_model_version_id for p in projects if p.current_model_version_id]
    if not ids:
        return {}
    rows = project_repo.current_models(session, ids)
    return {pid: {"estimate": (m or {}).get("accuracy_estimate"), "number": number,
                  "ci": [m["ci_low"], m["ci_high"]] if m and m.get("ci_low") is not None else None,
                  "audit_labels": (m or {}).get("audit_labels", 0)} for pid, m, number in rows}


def remove_member(session: Session, project: Project, username: str) -> None:
    membership = project_repo.membership_by_username(session, project.id, username)
    if membership is None:
        raise NotFound(f"'{username}' is not a member of project {project.id}")
    session.delete(membership)
    session.flush()


_Version = type[BackboneVersion | EmbeddingVersion | ModelVersion]
# What GET versions lists of each kind: (key, table, the project's column naming the current one, fields).
_VERSION_FIELDS: tuple[tuple[str, _Version, str, tuple[str, ...]], ...] = (
    ("backbones", BackboneVersion, "current_backbone_version_id", ("method", "backbone", "params", "metrics")),
    ("embeddings", EmbeddingVersion, "current_embedding_version_id",
     ("backbone_version_id", "kind", "layer", "dim", "count", "metrics")),
    ("models", ModelVersion, "current_model_version_id",
     ("estimator", "strategy", "label_count", "embedding_version_id", "params", "metrics")),
)


def versions(session: Session, project: Project, limit: int) -> dict[str, list[dict[str, Any]]]:
    """The project's newest ``limit`` backbone, embedding and model versions, each with its figures and
    whether it is the one in use."""
    out: dict[str, list[dict[str, Any]]] = {}
    for key, model, current_attr, fields in _VERSION_FIELDS:
        current = getattr(project, current_attr)
        out[key] = [{"id": r.id, "job_id": r.job_id, "current": r.id == current, "created_at": r.created_at.isoformat(),
                     **{f: getattr(r, f) for f in fields}}
                    for r in project_repo.newest_versions(session, model, project.id, limit)]
    return out
