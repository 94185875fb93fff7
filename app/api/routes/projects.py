from __future__ import annotations

from fastapi import APIRouter

from app.api import errors
from app.api.deps import AdminUser, CurrentUser, ProjectAdmin, ProjectMember, SessionDep, SettingsDep
from app.models import Project
from app.schemas.common import MemberIn, MemberOut, ProjectIn, ProjectOut, ProjectPatch
from app.services import backbones as backbone_service
from app.services import projects as project_service
from app.services.project_settings import effective_settings, patch_values

router = APIRouter(prefix="/projects", tags=["projects"])


def _public_settings(stored: dict | None) -> dict:
    shown = effective_settings(stored)
    if shown.get("webhook_secret"):
        shown["webhook_secret"] = "********"  # write-only: it signs webhooks, nobody needs to read it
    return shown


def project_out(project: Project, role: str, counts: tuple[int, int], accuracy: dict | None = None) -> ProjectOut:
    acc = accuracy or {}
    return ProjectOut(
        id=project.id, name=project.name, kind=project.kind, description=project.description,
        classes=project.classes,
        settings=_public_settings(project.settings), sample_count=counts[0], labelled_count=counts[1],
        current_model_version=project.current_model_version_id,
        current_backbone_version=project.current_backbone_version_id,
        current_embedding_version=project.current_embedding_version_id, accuracy_estimate=acc.get("estimate"),
        accuracy_ci=acc.get("ci"),
        audit_label_count=acc.get("audit_labels"), current_model_number=acc.get("number"), role=role,
        created_at=project.created_at,
    )


@router.post("", status_code=201, responses=errors.responses(400, 401, 403, 409, 413, 422))
def create_project(body: ProjectIn, session: SessionDep, _admin: AdminUser) -> ProjectOut:
    project = project_service.create_project(
        session, body.name, body.classes, body.description, body.settings.model_dump(exclude_none=True)
        if body.settings else None, kind=body.kind)
    backbone_service.check_choice(session, effective_settings(project.settings))
    return project_out(project, "admin", (0, 0))


@router.patch("/{pid}", responses=errors.responses(400, 401, 403, 404, 413, 422))
def update_project(body: ProjectPatch, session: SessionDep, settings: SettingsDep,
                   access: ProjectAdmin) -> ProjectOut:
    """Change the description, append classes, or change settings (estimator, strategy, retrain
    interval, batch size, self-supervised method, ...). Admin only."""
    project = access.project
    before = effective_settings(project.settings)
    project_service.update_project(session, project, body.description, body.add_classes,
                                   patch_values(body.settings) if body.settings else {})
    backbone_service.settings_changed(session, project, before, settings.broker_url)
    project_service.embedding_settings_changed(session, project, before, settings.broker_url)
    return project_out(project, access.role, project_service.sample_counts(session, project.id))


@router.get("", responses=errors.responses(401))
def list_projects(session: SessionDep, user: CurrentUser) -> list[ProjectOut]:
    visible = project_service.visible_projects(session, user)
    counts = project_service.sample_counts_of(session, [p.id for p, _ in visible])
    accuracy = project_service.accuracy_estimates(session, [p for p, _ in visible])
    return [project_out(p, role, counts.get(p.id, (0, 0)), accuracy.get(p.id)) for p, role in visible]


@router.get("/{pid}", responses=errors.responses(401, 404))
def get_project(session: SessionDep, access: ProjectMember) -> ProjectOut:
    project = access.project
    return project_out(project, access.role, project_service.sample_counts(session, project.id),
                       project_service.accuracy_estimates(session, [project]).get(project.id))


@router.post("/{pid}/members", status_code=201, responses=errors.responses(400, 401, 403, 404, 413, 422))
def add_member(body: MemberIn, session: SessionDep, access: ProjectAdmin) -> MemberOut:
    project_service.add_member(session, access.project, body.username, body.role)
    return MemberOut(username=body.username, role=body.role)


@router.delete("/{pid}/members/{username}", status_code=204, responses=errors.responses(401, 403, 404))
def remove_member(pid: int, username: str, session: SessionDep, access: ProjectAdmin) -> None:
    """Take a user's access to the project away (their labels stay, with their name)."""
    # pid is checked by ProjectAdmin; named here too so the OpenAPI parameters keep their order.
    project_service.remove_member(session, access.project, username)


@router.get("/{pid}/members", responses=errors.responses(401, 404))
def list_members(session: SessionDep, access: ProjectMember) -> list[MemberOut]:
    return [MemberOut(username=u, role=r) for u, r in project_service.members(session, access.project)]
