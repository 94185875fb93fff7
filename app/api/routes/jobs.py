from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import AdminUser, CurrentUser, SessionDep, SettingsDep
from app.models import Job
from app.schemas.jobs import JobIn, JobOut
from app.services import jobs as job_service
from app.services import projects as project_service

router = APIRouter(tags=["jobs"])


def job_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id, project_id=job.project_id, kind=job.kind, state=job.state, progress=job.progress,
        message=job.message, error=job.error, params=job.params, result=job.result, created_at=job.created_at,
        started_at=job.started_at, finished_at=job.finished_at,
    )


@router.post("/projects/{pid}/jobs", status_code=201, response_model=JobOut)
def create_job(pid: int, body: JobIn, session: SessionDep, settings: SettingsDep, admin: AdminUser) -> JSONResponse:
    """Queues a job (admin). A train job folds into one that is still waiting (answer 200)."""
    project, _ = project_service.get_project_for(session, admin, pid, "admin")
    job, created = job_service.create_job(session, project, admin, body.kind, body.params, settings.broker_url)
    return JSONResponse(job_out(job).model_dump(mode="json"), status_code=201 if created else 200)


@router.get("/projects/{pid}/jobs")
def list_jobs(pid: int, session: SessionDep, user: CurrentUser) -> list[JobOut]:
    project, _ = project_service.get_project_for(session, user, pid)
    return [job_out(j) for j in job_service.list_jobs(session, project)]


@router.get("/jobs/{jid}")
def get_job(jid: int, session: SessionDep, user: CurrentUser) -> JobOut:
    job = job_service.get_job(session, jid)
    project_service.get_project_for(session, user, job.project_id)
    return job_out(job)


@router.post("/jobs/{jid}/cancel")
def cancel_job(jid: int, session: SessionDep, admin: AdminUser) -> JobOut:
    job = job_service.get_job(session, jid)
    return job_out(job_service.cancel_job(session, job))
