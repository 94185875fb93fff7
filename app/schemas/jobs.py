from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.job_kinds import JobKind


class JobIn(BaseModel):
    kind: JobKind
    params: dict[str, Any] = Field(default_factory=dict)


class JobOut(BaseModel):
    id: int
    project_id: int
    kind: str
    state: str
    progress: float
    message: str
    error: str | None
    params: dict[str, Any]
    result: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    eta_seconds: float | None = Field(None, description="time left as the worker last estimated it, while it runs")
    note: str | None = Field(None, description="why the answer is an existing job (a request that joined it)")


class StatusJob(BaseModel):
    id: int
    kind: str
    state: str
    progress: float
    eta_seconds: float | None


class ProjectStatusOut(BaseModel):
    line: str = Field(description="what the workers are doing for the project, in one line for the expert")
    busy: bool = Field(description="whether any job of the project is queued or running")
    jobs: list[StatusJob] = Field(description="the queued and running jobs behind the line, the first said first")
