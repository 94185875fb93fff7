from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api import errors
from app.api.deps import AdminUser, CurrentUser, SessionDep, SettingsDep, require
from app.models import Job
from app.schemas.jobs import JobIn, JobOut, ProjectStatusOut
from app.services import jobs as job_service
from app.services import projects as project_service

router = APIRouter(tags=["jobs"])


def job_out(job: Job, note: str | None = None) -> JobOut:
    return JobOut(
        id=job.id, project_id=job.project_id, kind=job.kind, state=job.state, progress=job.progress,
        message=job.message, error=job.error, params=job.params, result=job.result, created_at=job.created_at,
        started_at=job.started_at, finished_at=job.finished_at, eta_seconds=job_service.eta_seconds(job), note=note,
    )


@router.post("/projects/{pid}/jobs", status_code=201, response_model=JobOut,
             responses={**errors.responses(400, 401, 403, 404, 413, 422),
                        200: {"model": JobOut, "description": "folded into a job waiting or under way (``note``)"}})
def create_job(pid: int, body: JobIn, session: SessionDep, settings: SettingsDep, admin: AdminUser) -> JSONResponse:
    """Queues a job (admin). A train or embed job folds into one that is still waiting, a pretrain job
    into the project's pretraining under way (answer 200, with a ``note`` saying so)."""
    project, _ = project_service.get_project_for(session, admin, pid, "admin")
    job, created = job_service.create_job(session, project, admin, body.kind, body.params, settings.broker_url)
    out = job_out(job, note=None if created else job_service.fold_note(job))
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/projects/{pid}/jobs", responses=errors.responses(401, 404))
def list_jobs(pid: int, session: SessionDep, user: CurrentUser) -> list[JobOut]:
    project, _ = project_service.get_project_for(session, user, pid)
    return [job_out(j) for j in job_service.list_jobs(session, project)]


@router.get("/projects/{pid}/status", responses=errors.responses(401, 404))
def project_status(pid: int, session: SessionDep, user: CurrentUser) -> ProjectStatusOut:
    """What the workers are doing for the project, in one line for the expert ("backbone improving,
    62% trained; suggestions may get better in about 4 min"), and the jobs behind it."""
    project, _ = project_service.get_project_for(session, user, pid)
    return ProjectStatusOut(**job_service.project_status(session, project))


@router.get("/jobs/{jid}", responses=errors.responses(401, 404))
def get_job(jid: int, session: SessionDep, user: CurrentUser) -> JobOut:
    job = job_service.get_job(session, jid)
    require(session, user, job.project_id, not_found=f"job {jid} not found")
    return job_out(job)


@router.post("/jobs/{jid}/cancel", responses=errors.responses(401, 403, 404, 422))
def cancel_job(jid: int, session: SessionDep, settings: SettingsDep, admin: AdminUser) -> JobOut:
    job = job_service.get_job(session, jid)
    return job_out(job_service.cancel_job(session, job, settings.broker_url, settings.job_stale_seconds))
