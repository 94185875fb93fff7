"""A request that folds into a waiting job sends its task again now and then, not at every request:
when it last reached the broker is on the job row (``jobs.sent_at``), shared by every API process."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import redis

from app.db import session_scope
from app.models import Job, Project
from app.services.jobs import RESEND_EVERY_S, create_job
from tests.conftest import make_settings, running_worker

BROKER_DOWN = "redis://127.0.0.1:1/0"


def _project(url: str) -> int:
    with session_scope(url) as s:
        p = Project(name="resend", classes=["a", "b"], settings={})
        s.add(p)
        s.flush()
        return p.id


def _train(url: str, pid: int, broker: str) -> tuple[int, bool]:
    with session_scope(url) as s:
        job, created = create_job(s, s.get(Project, pid), None, "train", {"reason": "new labels"}, broker)
        return job.id, created


def _sent_at(url: str, jid: int) -> datetime | None:
    with session_scope(url) as s:
        return s.get(Job, jid).sent_at


def test_folds_send_the_waiting_job_again_only_every_half_minute(sqlite_url, redis_url):
    broker = redis.Redis.from_url(redis_url)
    pid = _project(sqlite_url)
    jid, created = _train(sqlite_url, pid, redis_url)
    assert created and broker.llen("cpu") == 1
    sent = _sent_at(sqlite_url, jid)
    assert sent is not None
    for _ in range(3):  # labels arriving once K are in: each folds, none sends
        assert _train(sqlite_url, pid, redis_url) == (jid, False)
    assert broker.llen("cpu") == 1 and _sent_at(sqlite_url, jid) == sent
    with session_scope(sqlite_url) as s:  # half a minute on
        s.get(Job, jid).sent_at = sent - timedelta(seconds=RESEND_EVERY_S + 1)
    assert _train(sqlite_url, pid, redis_url) == (jid, False)
    assert broker.llen("cpu") == 2 and _sent_at(sqlite_url, jid) > sent


def test_a_send_that_failed_is_tried_again_at_the_next_fold(sqlite_url, redis_url):
    pid = _project(sqlite_url)
    jid, _ = _train(sqlite_url, pid, BROKER_DOWN)  # accepted while the broker is down: stays queued
    assert _sent_at(sqlite_url, jid) is None
    assert _train(sqlite_url, pid, redis_url) == (jid, False)
    assert redis.Redis.from_url(redis_url).llen("cpu") == 1 and _sent_at(sqlite_url, jid) is not None


def test_a_running_worker_sends_a_job_whose_own_send_failed(tmp_path, sqlite_url):
    """The send after a job's commit can fail (CI saw a first pretraining stay queued for good: the
    SQLite broker's tables were being created by a worker at that moment). A worker sends the queued
    jobs when it starts; one already running must send such a job too, or it waits for a restart."""
    settings = make_settings(tmp_path, sqlite_url, job_stale_seconds=6)  # a sweep every 3 s
    pid = _project(sqlite_url)
    with running_worker(settings, queues="cpu") as worker:  # its start has sent what was queued then
        jid, _ = _train(sqlite_url, pid, BROKER_DOWN)
        assert _sent_at(sqlite_url, jid) is None
        deadline = time.monotonic() + 45
        while (state := _state(sqlite_url, jid)) == "queued":
            assert time.monotonic() < deadline, f"job {jid} still queued: {worker.log_path.read_text()[-2000:]}"
            time.sleep(0.5)
    assert state in ("running", "succeeded", "failed") and _sent_at(sqlite_url, jid) is not None


def _state(url: str, jid: int) -> str:
    with session_scope(url) as s:
        return s.get(Job, jid).state
