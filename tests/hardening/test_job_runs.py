"""Only the run that holds a job writes its row. A worker whose heartbeat is late (a loaded machine, a
locked SQLite) has its job re-queued by another worker's sweep and claimed again, or its job ended by a
cancel that found it stale, or put back by its stopping worker and claimed again: that first run's
reports, beats and outcome must leave the row alone (they overwrote the second run's progress, marked
the job succeeded or failed while the second ran, and fired the failure webhook). Real repos, runner
and database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.db import session_scope
from app.models import Job, Project, WebhookDelivery
from app.models.base import utcnow

STALE_S = 30.0
COLUMNS = ("state", "progress", "message", "eta_at", "figures", "result", "error", "heartbeat_at", "finished_at",
           "started_at", "attempts")


@pytest.fixture
def job(use_settings) -> int:
    """A queued train job (sent) of a project with a webhook, so a ``job.failed`` event leaves a row."""
    with session_scope(use_settings.database_url) as s:
        project = Project(name="p", classes=["a", "b"], settings={"webhook_url": "http://127.0.0.1:9/hook"})
        s.add(project)
        s.flush()
        row = Job(project_id=project.id, kind="train", params={}, state="queued", sent_at=utcnow())
        s.add(row)
        s.flush()
        job_id = row.id
    return job_id


def _row(url: str, job_id: int) -> dict:
    with session_scope(url, read_only=True) as s:
        row = s.get(Job, job_id)
        return {c: getattr(row, c) for c in COLUMNS}


def _failed_events(url: str) -> int:
    with session_scope(url, read_only=True) as s:
        return s.scalar(select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.event == "job.failed"))


def _late_heartbeat(url: str, job_id: int) -> None:
    with session_scope(url) as s:
        s.get(Job, job_id).heartbeat_at = utcnow() - timedelta(seconds=STALE_S + 5)


def _old_run_writes(url: str, job_id: int, run) -> None:
    """Everything a run that lost its job may still try: a report, a beat, a failure, a success."""
    from app.repos import jobs as jobs_repo
    from workers.jobs import runner
    from workers.jobs.progress import JobLost, Progress

    with pytest.raises(JobLost):
        Progress(job_id, url, run, min_interval=0)(0.9, "old run, 90%", eta_s=1, figures={"images": 90})
    with session_scope(url) as s:
        assert jobs_repo.beat(s, job_id, run) is False
    runner._finish(url, job_id, run, "failed", "failed", error="RuntimeError: the old run failed")
    runner._finish(url, job_id, run, "succeeded", "done", result={"model_version": 1})


def test_a_run_whose_job_a_sweep_requeued_writes_nothing_over_the_next_run(use_settings, job):
    from workers.jobs import runner
    from workers.jobs.progress import Progress

    url = use_settings.database_url
    first = runner.claim(url, job)
    assert first is not None and first.kind == "train"
    Progress(job, url, first.run, min_interval=0)(0.4, "first run, 40%", figures={"images": 40})
    _late_heartbeat(url, job)
    assert runner.sweep_stale_jobs(url, use_settings.broker_url, STALE_S) == [(job, "train")]
    assert _row(url, job)["state"] == "queued"
    second = runner.claim(url, job)
    assert second is not None and second.run != first.run
    Progress(job, url, second.run, min_interval=0)(0.1, "second run, 10%", eta_s=60, figures={"images": 10})
    before = _row(url, job)

    _old_run_writes(url, job, first.run)
    assert _row(url, job) == before
    assert _failed_events(url) == 0, "the old run's failure fired the webhook"

    Progress(job, url, second.run, min_interval=0)(0.5, "second run, 50%")
    assert (_row(url, job)["progress"], _row(url, job)["message"]) == (0.5, "second run, 50%")
    runner._finish(url, job, second.run, "failed", "failed", error="RuntimeError: the second run failed")
    after = _row(url, job)
    assert (after["state"], after["error"], after["attempts"]) == ("failed", "RuntimeError: the second run failed", 1)
    assert _failed_events(url) == 1


def test_a_job_a_stale_cancel_ended_stays_cancelled_when_its_old_run_ends(use_settings, job):
    from app.services.jobs import cancel_job
    from workers.jobs import runner

    url = use_settings.database_url
    first = runner.claim(url, job)
    assert first is not None
    _late_heartbeat(url, job)
    with session_scope(url) as s:
        cancel_job(s, s.get(Job, job), use_settings.broker_url, STALE_S)
    before = _row(url, job)
    assert before["state"] == "cancelled" and "stopped answering" in before["message"]

    _old_run_writes(url, job, first.run)
    assert _row(url, job) == before
    assert _failed_events(url) == 0


def test_a_run_put_back_by_its_stopping_worker_writes_nothing_over_the_next_run(use_settings, job):
    """``_put_back_late``: the run went on past its worker's stop; its job was put back and claimed
    again. Nor does a second put-back of the old run send the new one back to the queue."""
    from workers.jobs import runner

    url = use_settings.database_url
    first = runner.claim(url, job)
    assert first is not None
    runner.put_back(url, [(job, first.run)])
    assert _row(url, job)["state"] == "queued"
    second = runner.claim(url, job)
    assert second is not None and second.run != first.run
    before = _row(url, job)

    runner.put_back(url, [(job, first.run)])
    _old_run_writes(url, job, first.run)
    assert _row(url, job) == before

    runner._finish(url, job, second.run, "succeeded", "done", result={"model_version": 2})
    after = _row(url, job)
    assert (after["state"], after["progress"], after["result"]) == ("succeeded", 1.0, {"model_version": 2})


def test_a_real_workers_run_that_lost_its_job_stops_without_writing(tmp_path, sqlite_url):
    """End to end: a Celery worker runs a pretraining; meanwhile its heartbeat is made late and another
    sweep (this process's) re-queues the job, which this process then claims (the second run). The
    worker's run stops at its next report and leaves the second run's row as it was."""
    import time

    from app.repos import jobs as jobs_repo
    from tests.conftest import ADMIN_PASSWORD, Api, digits_pngs, imagefolder_zip, make_settings, running_worker, upload
    from tests.conftest import served as serve
    from workers.jobs import runner

    settings = make_settings(tmp_path, sqlite_url, job_stale_seconds=600)  # only this test's sweep re-queues
    url = settings.database_url
    with serve(settings) as client, running_worker(settings, queues="long") as worker:
        admin = Api(client).login_as("admin", ADMIN_PASSWORD)
        pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)], "settings": {
            "auto_pretrain": False, "auto_embed": False, "retrain_every": 100_000}}).json()["id"]
        assert upload(admin, pid, [("digits.zip", imagefolder_zip(digits_pngs(200)))]).status_code == 201
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain", "params": {"budget_seconds": 60}}).json()
        deadline = time.monotonic() + 120
        while not ((row := _row(url, job["id"]))["state"] == "running" and row["progress"] > 0.02):
            assert time.monotonic() < deadline, f"never ran: {row}"
            time.sleep(0.2)
        with session_scope(url) as s:  # one transaction: the worker's beats cannot land in between
            s.get(Job, job["id"]).heartbeat_at = utcnow() - timedelta(seconds=700)
            s.flush()
            assert jobs_repo.requeue_stale(s, utcnow() - timedelta(seconds=600), 3) == [(job["id"], "pretrain")]
        second = runner.claim(url, job["id"])
        assert second is not None
        before = _row(url, job["id"])
        log = worker.log_path  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while "this run stops and writes nothing more" not in log.read_text():
            assert time.monotonic() < deadline, f"the old run went on: {log.read_text()[-3000:]}"
            time.sleep(0.2)
        time.sleep(1.0)  # what the old run might still do after its last report (it should do nothing)
        assert _row(url, job["id"]) == before
        assert f"job {job['id']} failed" not in log.read_text()
    runner._finish(url, job["id"], second.run, "succeeded", "done", result={})
    assert _row(url, job["id"])["state"] == "succeeded"
