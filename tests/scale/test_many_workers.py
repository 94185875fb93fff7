"""Several worker processes on one Redis share the jobs of several projects, and never run two train
jobs of one project at once (checked from the jobs table's start and finish times)."""

from __future__ import annotations

import time
from contextlib import ExitStack

import numpy as np
import pytest
from sqlalchemy import select

from app import embedding_store
from app.db import session_scope
from app.models import EmbeddingVersion, Job, Project, Sample
from tests.conftest import fresh_database, make_settings, running_worker

N_SAMPLES = 600
CLASSES = ["a", "b", "c"]


@pytest.fixture
def pg_url(request, tmp_path):
    with fresh_database("postgres", tmp_path, request) as url:
        yield url


def _project(url: str, media, name: str, seed: int) -> int:
    from app.services.labels import LabelRequest, add_labels

    rng = np.random.default_rng(seed)
    with session_scope(url) as s:
        project = Project(name=name, classes=CLASSES, settings={"auto_pretrain": False, "auto_embed": False})
        s.add(project)
        s.flush()
        s.add_all([Sample(project_id=project.id, filename=f"{i}.png", content_hash=f"{seed:08x}{i:056x}",
                          storage_key="k", thumbnail_key="t", width=1, height=1, mode="L", byte_size=1,
                          rand_key=int(rng.integers(2**62)), is_audit=i % 10 == 0) for i in range(N_SAMPLES)])
        s.flush()
        ids = np.array(s.scalars(select(Sample.id).where(Sample.project_id == project.id).order_by(Sample.id)).all())
        y = rng.integers(0, len(CLASSES), N_SAMPLES)
        X = (rng.standard_normal((len(CLASSES), 64))[y] + rng.standard_normal((N_SAMPLES, 64))).astype(np.float16)
        file_key, ids_key = embedding_store.write(media, project.id, "synthetic", ids, X)
        ev = EmbeddingVersion(project_id=project.id, kind="pixels", dim=64, dtype="float16", count=N_SAMPLES,
                              file_key=file_key, ids_key=ids_key)
        s.add(ev)
        s.flush()
        project.current_embedding_version_id = ev.id
        add_labels(s, project, None, [LabelRequest(int(ids[i]), CLASSES[int(y[i])]) for i in range(0, 300, 5)],
                   source="import")
        return project.id


def test_workers_share_projects_but_never_run_one_projects_train_twice(tmp_path, pg_url, redis_url):
    from app import task_client

    settings = make_settings(tmp_path, pg_url, broker_url=redis_url)
    settings.ensure_dirs()
    projects = [_project(pg_url, settings.media_path, f"p{i}", seed=i) for i in range(3)]
    with ExitStack() as stack:
        workers = [stack.enter_context(running_worker(settings, queues="cpu")) for _ in range(2)]
        # Two train jobs per project, all queued at once (as if retrains were requested while one ran),
        # each sent twice: a duplicate delivery must not run a job twice either.
        with session_scope(pg_url) as s:
            # A project's two jobs next to each other in the queue: without the per-project rule the two
            # workers would take them together.
            jobs = [Job(project_id=pid, kind="train", params={}, state="queued") for pid in projects for _ in range(2)]
            s.add_all(jobs)
            s.flush()
            ids = [j.id for j in jobs]
        for jid in ids + ids:
            assert task_client.send_job(redis_url, jid, "train")
        deadline = time.monotonic() + 120
        while True:
            with session_scope(pg_url) as s:
                rows = s.execute(select(Job.id, Job.project_id, Job.state, Job.started_at, Job.finished_at, Job.error,
                                        Job.result)
                                 .where(Job.id.in_(ids))).all()
            if all(r.state in ("succeeded", "failed", "cancelled") for r in rows):
                break
            assert time.monotonic() < deadline, f"jobs not done in 120 s: {[(r.id, r.state) for r in rows]}"
            time.sleep(0.3)
        assert all(w.poll() is None for w in workers)
        logs = [w.log_path.read_text() for w in workers]

    assert [r.error for r in rows if r.state != "succeeded"] == []
    # Every fit saw the project's 60 labels (of which the audit share is held out for the estimate).
    assert {r.result["labels"] for r in rows} == {60} and {r.result["samples"] for r in rows} == {N_SAMPLES}
    by_project: dict[int, list] = {}
    for r in rows:
        by_project.setdefault(r.project_id, []).append((r.started_at, r.finished_at))
    for pid, spans in by_project.items():
        spans.sort()
        for (_s0, f0), (s1, _f1) in zip(spans, spans[1:], strict=False):
            assert s1 >= f0, f"project {pid} ran two train jobs at once: {spans}"
    # The workers did share the work: jobs of different projects overlapped in time, and more than one
    # worker process ran jobs.
    spans = sorted((r.started_at, r.finished_at, r.project_id) for r in rows)
    assert any(b[0] < a[1] and a[2] != b[2] for a, b in zip(spans, spans[1:], strict=False)), spans
    assert sum("succeeded in" in log for log in logs) >= 2, "only one worker ran jobs"


def test_a_claim_that_waited_for_the_project_lock_starts_after_the_job_it_waited_for(tmp_path, pg_url):
    """Two workers claim one project's jobs together: the second waits on the project row while the
    first job ends. Its start must not be stamped before that end (it was: CI saw two spans overlap by
    35 microseconds, the start taken before the wait)."""
    import threading

    from app.models.base import utcnow
    from workers.jobs.runner import claim

    pid = _project(pg_url, tmp_path, "p", seed=0)
    with session_scope(pg_url) as s:
        first = Job(project_id=pid, kind="train", params={}, state="running", started_at=utcnow())
        second = Job(project_id=pid, kind="train", params={}, state="queued")
        s.add_all([first, second])
        s.flush()
        first_id, second_id = first.id, second.id
    claimed: list = []
    with session_scope(pg_url) as s:
        # This session plays the first job's worker while another claims: it holds the project row.
        s.execute(select(Project.id).where(Project.id == pid).with_for_update())
        waiter = threading.Thread(target=lambda: claimed.append(claim(pg_url, second_id)))
        waiter.start()
        time.sleep(0.5)  # the claim is now blocked on the project row
        assert waiter.is_alive(), "the claim did not wait for the project's row lock"
        job = s.get(Job, first_id)
        job.state, job.finished_at = "succeeded", utcnow()
    waiter.join(10)
    assert [c.kind for c in claimed] == ["train"]
    with session_scope(pg_url) as s:
        ended = s.get(Job, first_id).finished_at
        started = s.get(Job, second_id).started_at
    assert started >= ended, f"the second job is stamped as started {ended - started} before the first ended"
