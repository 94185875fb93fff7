"""A job whose worker died does not stay "running" (issue 16, item 3): running workers sweep for stale
jobs, a cancel of a stale job ends it at once, and a worker that is stopped puts its job back."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import (
    ADMIN_PASSWORD,
    Api,
    digits_pngs,
    imagefolder_zip,
    make_settings,
    running_worker,
    upload,
)

STALE_S = 4.0  # the sweep runs every 2 s


@pytest.fixture
def served(tmp_path, sqlite_url):
    from app.db import session_scope
    from app.main import create_app
    from app.services.auth import create_user

    settings = make_settings(tmp_path, sqlite_url, job_stale_seconds=STALE_S)
    with session_scope(settings.database_url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)
    with TestClient(create_app(settings)) as client:
        yield settings, Api(client).login_as("admin", ADMIN_PASSWORD)


def _project(admin: Api, n: int = 200) -> int:
    pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                        "settings": {"auto_pretrain": False, "auto_embed": False,
                                                     "retrain_every": 100_000}}).json()["id"]
    assert upload(admin, pid, [("digits.zip", imagefolder_zip(digits_pngs(n)))]).status_code == 201
    return pid


def _wait(admin: Api, job_id: int, done, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while not done(job := admin.get(f"/jobs/{job_id}").json()):
        assert time.monotonic() < deadline, f"{what}: {job}"
        time.sleep(0.2)
    return job


def test_a_worker_killed_mid_pretraining_is_recovered_while_the_service_runs(served):
    """The floor: SIGKILL the long-jobs worker mid-pretrain while the short-jobs one goes on (as under
    `loupe serve`): the job is re-queued within the stale threshold plus a sweep, and a cancel ends it."""
    settings, admin = served
    pid = _project(admin)
    with running_worker(settings, queues="gpu,cpu"):
        with running_worker(settings, queues="long") as long_worker:
            job = admin.post(f"/projects/{pid}/jobs",
                             json={"kind": "pretrain", "params": {"budget_seconds": 60}}).json()
            _wait(admin, job["id"], lambda j: j["state"] == "running" and j["progress"] > 0.02, 60, "never ran")
            long_worker.kill()  # SIGKILL: no chance to clean up
            long_worker.wait()
            killed_at = time.monotonic()
        # No worker of the long queue is left to run it again, so it waits, queued, for one.
        back = _wait(admin, job["id"], lambda j: j["state"] != "running", 3 * STALE_S + 10, "still running")
        assert back["state"] == "queued" and "worker was lost" in back["message"], back
        assert time.monotonic() - killed_at < 3 * STALE_S + 10
        cancelled = admin.post(f"/jobs/{job['id']}/cancel").json()
        assert cancelled["state"] == "cancelled" and cancelled["finished_at"], cancelled
        again = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain", "params": {"budget_seconds": 2}})
        assert again.status_code == 201, again.json()  # a new pretraining does not fold into the dead one


def _running(settings, job_id: int, heartbeat_age_s: float) -> None:
    """Make the job look as if a worker claimed it and last beat ``heartbeat_age_s`` ago."""
    from app.db import session_scope
    from app.models import Job
    from app.models.base import utcnow

    with session_scope(settings.database_url) as s:
        job = s.get(Job, job_id)
        job.state, job.started_at = "running", utcnow() - timedelta(seconds=heartbeat_age_s + 5)
        job.heartbeat_at = utcnow() - timedelta(seconds=heartbeat_age_s)


def _started_at(settings, job_id: int):
    """The run that holds the job (``app.repos.jobs.Claim``): its ``started_at``."""
    from app.db import session_scope
    from app.models import Job

    with session_scope(settings.database_url, read_only=True) as s:
        return s.get(Job, job_id).started_at


def test_a_cancel_ends_a_stale_running_job_at_once_and_a_live_one_when_its_worker_sees_it(admin, settings):
    pid = _project(admin, n=20)
    live = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain"}).json()
    _running(settings, live["id"], heartbeat_age_s=1)
    asked = admin.post(f"/jobs/{live['id']}/cancel").json()
    assert asked["state"] == "running" and asked["finished_at"] is None, asked  # its worker stops it

    other = admin.post(f"/projects/{pid}/jobs", json={"kind": "embed"}).json()
    _running(settings, other["id"], heartbeat_age_s=settings.job_stale_seconds + 30)
    gone = admin.post(f"/jobs/{other['id']}/cancel").json()
    assert gone["state"] == "cancelled" and gone["finished_at"], gone
    assert "stopped answering" in gone["message"]
    assert admin.post(f"/jobs/{other['id']}/cancel").status_code == 422  # already ended


def test_a_sweep_leaves_the_jobs_its_own_process_runs_however_late_their_beats(admin, settings):
    """A worker's sweep does not re-queue the job it is running itself when its heartbeat is late (a
    busy machine, SQLite's write lock held by an import): that worker is not lost."""
    from app.models.base import utcnow
    from workers.jobs import runner

    pid = _project(admin, n=20)
    mine = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain"}).json()["id"]
    lost = admin.post(f"/projects/{pid}/jobs", json={"kind": "embed"}).json()["id"]
    _running(settings, mine, heartbeat_age_s=settings.job_stale_seconds + 30)
    _running(settings, lost, heartbeat_age_s=settings.job_stale_seconds + 30)
    runner.RUNNING[mine] = utcnow()
    try:
        resent = runner.recover_stale_jobs(settings.database_url, settings.job_stale_seconds)
    finally:
        del runner.RUNNING[mine]
    assert resent == [(lost, "embed")]
    assert admin.get(f"/jobs/{mine}").json()["state"] == "running"
    assert admin.get(f"/jobs/{lost}").json()["state"] == "queued"


def test_a_lost_or_stopped_job_whose_cancel_was_asked_ends_cancelled_instead_of_running_again(admin, settings):
    """A cancel asked of a live job, whose worker then dies (or stops) before its next report: the sweep
    (or the stopping worker) ends it cancelled rather than queueing it to run again."""
    from workers.jobs import runner

    pid = _project(admin, n=20)
    lost = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain"}).json()["id"]
    stopped = admin.post(f"/projects/{pid}/jobs", json={"kind": "embed"}).json()["id"]
    for jid in (lost, stopped):
        _running(settings, jid, heartbeat_age_s=1)
        assert admin.post(f"/jobs/{jid}/cancel").json()["state"] == "running"
    _running(settings, lost, heartbeat_age_s=settings.job_stale_seconds + 30)
    assert runner.recover_stale_jobs(settings.database_url, settings.job_stale_seconds) == []
    runner.put_back(settings.database_url, [(stopped, _started_at(settings, stopped))])
    for jid in (lost, stopped):
        job = admin.get(f"/jobs/{jid}").json()
        assert job["state"] == "cancelled" and job["finished_at"], job
