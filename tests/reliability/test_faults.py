"""Faults, each made real: the broker process is killed, the database server is stopped under load,
two processes run train jobs on one project at once.

A worker killed (SIGKILL) during pretraining is shown in
tests/workers/test_pipeline.py::test_a_worker_killed_mid_pretraining_is_recovered (the job is retried
by the next worker, the project keeps its versions until the retry succeeds, the embedding file it
then uses is complete), and in tests/hardening/test_stale_jobs.py (while another worker runs, its sweep
re-queues the job within seconds, and a cancel ends it at once).

Stopping services here never touches the shared PostgreSQL or Redis: these tests start private ones.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import (
    ADMIN_PASSWORD,
    ROOT,
    Api,
    digits_pngs,
    make_settings,
    running_worker,
    settings_env,
    upload,
    wait_for_job,
)
from tests.reliability.conftest import create_admin, live_server, wait_until


def _labelled_project(admin: Api, n: int = 200, n_labels: int = 60) -> tuple[int, dict[int, str]]:
    pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                        "settings": {"auto_pretrain": False, "auto_embed": False,
                                                     "retrain_every": 100_000}}).json()["id"]
    items = digits_pngs(n)
    assert upload(admin, pid, [(name, data) for name, data, _ in items]).status_code == 201
    truth_by_name = {name: c for name, _, c in items}
    samples = admin.get(f"/projects/{pid}/samples", params={"limit": 1000}).json()["items"]
    truth = {s["id"]: truth_by_name[s["filename"]] for s in samples}
    first = [{"sample_id": sid, "label": truth[sid]} for sid in list(truth)[:n_labels]]
    assert admin.post(f"/projects/{pid}/labels", json=first).status_code == 201
    return pid, truth


# ---------------------------------------------------------------- the broker goes away


def test_broker_down_labelling_goes_on_and_jobs_run_when_it_is_back(tmp_path, sqlite_url, private_redis):
    settings = make_settings(tmp_path, sqlite_url, broker_url=private_redis.url)
    create_admin(settings)
    from app.main import create_app

    with TestClient(create_app(settings)) as client:
        admin = Api(client).login_as("admin", ADMIN_PASSWORD)
        pid, truth = _labelled_project(admin)

        private_redis.stop()
        health = admin.get("/health")
        assert health.status_code == 200 and health.json()["broker"] == "unavailable", health.json()
        # Labelling and the queue do not need the broker, and are not slowed down by its absence.
        t0 = time.monotonic()
        for _ in range(3):
            items = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 5}).json()["items"]
            assert len(items) == 5
            r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": i["sample_id"],
                                                             "label": truth[i["sample_id"]]} for i in items])
            assert r.status_code == 201, r.text
        assert time.monotonic() - t0 < 10
        # A job is accepted while the broker is down; it waits, queued.
        t0 = time.monotonic()
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"})
        assert job.status_code == 201 and job.json()["state"] == "queued", job.text
        assert time.monotonic() - t0 < settings.broker_timeout_s + 5
        job_id = job.json()["id"]
        time.sleep(1)
        assert admin.get(f"/jobs/{job_id}").json()["state"] == "queued"

        # The broker comes back (empty: the message was never sent); the worker re-sends on start.
        private_redis.start()
        assert admin.get("/health").json()["broker"] == "ok"
        with running_worker(settings) as worker:
            done = wait_for_job(admin, job_id, timeout=120)
            assert done["state"] == "succeeded", done
            assert done["result"]["labels"] == 75
            # It embedded first (auto_embed is off) and trained on those embeddings itself: no
            # follow-up train on the same labels is left behind.
            jobs = admin.get(f"/projects/{pid}/jobs").json()
            assert [j["id"] for j in jobs if j["kind"] == "train"] == [job_id], jobs

            # With the worker running: the broker dies again, a train request is accepted and waits;
            # when the broker is back, the worker reconnects and the next request for the same job
            # (it folds into the waiting one) sends it again.
            private_redis.stop()
            second = admin.post(f"/projects/{pid}/jobs", json={"kind": "train", "params": {"reason": "a"}})
            assert second.status_code == 201 and second.json()["state"] == "queued"
            time.sleep(2)
            assert admin.get(f"/jobs/{second.json()['id']}").json()["state"] == "queued"
            assert worker.poll() is None, "the worker died with its broker"
            private_redis.start()
            again = admin.post(f"/projects/{pid}/jobs", json={"kind": "train", "params": {"reason": "b"}})
            assert again.status_code == 200 and again.json()["id"] == second.json()["id"]
            done = wait_for_job(admin, second.json()["id"], timeout=120)
            assert done["state"] == "succeeded", (done, Path(worker.log_path).read_text()[-3000:])
        project = admin.get(f"/projects/{pid}").json()
        assert project["current_model_version"] == done["result"]["model_version"]
        assert project["labelled_count"] == 75


# ---------------------------------------------------------------- the database restarts under load


def test_database_restart_under_load_fails_cleanly_and_loses_no_label(tmp_path, private_pg):
    settings = make_settings(tmp_path, private_pg.database())
    create_admin(settings)
    with live_server(settings) as server, server.client() as c:
        pid = c.post("/projects", json={"name": "p", "classes": [str(i) for i in range(10)],
                                        "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
        items = digits_pngs(400)
        assert c.post(f"/projects/{pid}/samples", files=[("files", (n, d)) for n, d, _ in items]).status_code == 201
        token = c.headers["Authorization"]

        statuses: Counter[str] = Counter()
        acknowledged: list[tuple[str, int, str]] = []  # (idempotency key, sample id, label) answered 201
        lock = threading.Lock()
        stop = threading.Event()
        restarted_at: list[float] = []
        after_restart_ok = threading.Event()

        def call(client: httpx.Client, method: str, url: str, **kw) -> httpx.Response | None:
            try:
                r = client.request(method, url, **kw)
                key = str(r.status_code)
            except httpx.TransportError as exc:
                r, key = None, type(exc).__name__
            with lock:
                statuses[key] += 1
            return r

        def annotator(n: int) -> None:
            with httpx.Client(base_url=f"{server.url}/api/v1", headers={"Authorization": token}, timeout=10) as cl:
                while not stop.is_set():
                    r = call(cl, "POST", f"/projects/{pid}/queue/lease", params={"limit": 4})
                    if r is None or r.status_code != 200:
                        time.sleep(0.1)
                        continue
                    for item in r.json()["items"]:
                        key, label = uuid.uuid4().hex, str(item["sample_id"] % 10)
                        body = {"sample_id": item["sample_id"], "label": label}
                        # Retry with the same key until it is stored, as a careful client does.
                        while True:
                            r = call(cl, "POST", f"/projects/{pid}/labels", json=body,
                                     headers={"Idempotency-Key": key})
                            if r is not None and r.status_code == 201:
                                with lock:
                                    acknowledged.append((key, item["sample_id"], label))
                                if restarted_at and time.monotonic() > restarted_at[0]:
                                    after_restart_ok.set()
                                break
                            if stop.is_set() and not restarted_at:
                                return
                            time.sleep(0.1)

        threads = [threading.Thread(target=annotator, args=(i,), daemon=True) for i in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: len(acknowledged) >= 20, 60, "labels before the restart")
        before = len(acknowledged)
        private_pg.stop("fast")  # terminates every session, in-flight transactions included
        try:
            time.sleep(1.5)
            down = httpx.get(f"{server.url}/api/v1/health", timeout=10)
            assert down.status_code == 503 and down.json()["database"].startswith("unavailable"), down.text
        finally:
            private_pg.start()
        restarted_at.append(time.monotonic())
        assert after_restart_ok.wait(30), f"no label stored after the restart; statuses {statuses}"
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)

    print(f"database restart under load: {len(acknowledged)} labels acknowledged ({before} before the stop); "
          f"answers {dict(statuses)}")
    assert before < len(acknowledged)
    # While the database was away the answers were 503 (or the connection to the API itself failed
    # for a request in flight): never a 500, never anything else.
    assert statuses["503"] > 0, statuses
    assert set(statuses) <= {"200", "201", "503"}, statuses

    from app.db import get_engine, session_scope
    from app.models import IdempotencyRecord, Label, Sample

    get_engine.cache_clear()
    with session_scope(settings.database_url) as s:
        stored = s.execute(select(Label.sample_id, Label.label).where(Label.action == "set")).all()
        keys = set(s.scalars(select(IdempotencyRecord.key)))
        labelled = s.scalar(select(func.count()).select_from(Sample).where(Sample.status == "labelled"))
    # Every label a client was told is stored is stored, exactly once (retries replayed, not redone).
    assert sorted(stored) == sorted((sid, label) for _k, sid, label in acknowledged)
    assert {k for k, _s, _l in acknowledged} <= keys
    assert labelled == len({sid for _k, sid, _l in acknowledged})


# ---------------------------------------------------------------- two train jobs race


RACER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from workers.jobs.runner import run_job  # imports everything before the start signal
    import workers.jobs.train  # noqa: F401
    import ml.estimators, ml.strategies  # noqa: F401
    sync, name = Path(sys.argv[1]), sys.argv[2]
    if len(sys.argv) > 3:  # the embeddings every train job needs, made once, before the race
        run_job(int(sys.argv[3]))
    (sync / f"ready-{name}").touch()
    step = 0
    while True:  # each step: wait for our go file, run the job id it names, say done
        go = sync / f"go-{step}-{name}"
        while not go.exists():
            time.sleep(0.01)
        job = go.read_text().strip()
        if job == "exit":
            break
        if job:
            run_job(int(job))
        (sync / f"done-{step}-{name}").touch()
        step += 1
""")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_train_jobs_racing_on_one_project_keep_versions_consistent(tmp_path, request, kind):
    """Three worker processes per round, started at one instant: two are handed the same train job (a
    message delivered twice), the third another train job of the same project. Each job runs once; two
    train jobs of one project never run at the same time (the later one waits, queued, and runs when
    it is delivered again); the newest version ends current with complete predictions; older
    versions' predictions are pruned, never the current one's."""
    from tests.conftest import fresh_database

    with fresh_database(kind, tmp_path, request) as url:
        settings = make_settings(tmp_path, url)
        create_admin(settings)
        from app.db import session_scope
        from app.main import create_app
        from app.models import Job, ModelVersion, Prediction, Project

        with TestClient(create_app(settings)) as client:
            admin = Api(client).login_as("admin", ADMIN_PASSWORD)
            pid, truth = _labelled_project(admin, n=300, n_labels=40)
            embed = admin.post(f"/projects/{pid}/jobs", json={"kind": "embed"}).json()["id"]
            env = settings_env(settings)
            sync = tmp_path / "sync"
            sync.mkdir()
            names = ["p0", "p1", "p2"]
            procs = [subprocess.Popen([sys.executable, "-c", RACER, str(sync), name] + ([str(embed)] if i == 0 else []),
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                     for i, name in enumerate(names)]
            step = 0

            def run_step(assignment: dict[str, int | str]) -> None:
                nonlocal step
                for name in names:  # written at once: the racers start within ~10 ms of each other
                    (sync / f"go-{step}-{name}").write_text(str(assignment.get(name, "")))
                if all(v == "exit" for v in assignment.values()) and len(assignment) == len(names):
                    return
                wait_until(lambda st=step: all((sync / f"done-{st}-{n}").exists() for n in names)
                           or any(p.poll() not in (None, 0) for p in procs), 180, f"step {step}")
                failed = [p.stderr.read()[-3000:] for p in procs if p.poll() not in (None, 0)]
                assert not failed, failed
                step += 1

            try:
                wait_until(lambda: all((sync / f"ready-{n}").exists() for n in names), 180, "racers to start")
                assert admin.get(f"/jobs/{embed}").json()["state"] == "succeeded"
                for _round in range(2):
                    # New labels between rounds, so a newer version is also a better-informed one.
                    items = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 5}).json()["items"]
                    admin.post(f"/projects/{pid}/labels",
                               json=[{"sample_id": i["sample_id"], "label": truth[i["sample_id"]]} for i in items])
                    with session_scope(url) as s:
                        # Any train job already waiting (the embed job queues one) is finished first.
                        for j in s.scalars(select(Job).where(Job.project_id == pid, Job.state == "queued")):
                            j.state = "cancelled"
                        pair = [Job(project_id=pid, kind="train", params={}, state="queued") for _ in range(2)]
                        s.add_all(pair)
                        s.flush()
                        a, b = (j.id for j in pair)
                    run_step({"p0": a, "p1": a, "p2": b})
                    with session_scope(url) as s:
                        waiting = list(s.scalars(select(Job.id).where(Job.id.in_([a, b]), Job.state == "queued")))
                    # A job that found the other running waited; its redelivery (here: by hand) runs it.
                    assert len(waiting) <= 1, waiting
                    print(f"race on {kind}: jobs {a} (twice) and {b} at once; waited for the other: {waiting}")
                    if waiting:
                        run_step({"p2": waiting[0]})

                    with session_scope(url) as s:
                        project = s.get(Project, pid)
                        ran = list(s.scalars(select(Job).where(Job.id.in_([a, b]))))
                        versions = list(s.scalars(select(ModelVersion).where(ModelVersion.project_id == pid)
                                                  .order_by(ModelVersion.id)))
                        per_job = Counter(v.job_id for v in versions)
                        with_preds = dict(s.execute(select(Prediction.model_version_id, func.count())
                                                    .group_by(Prediction.model_version_id)).all())
                    assert all(j.state == "succeeded" for j in ran), [(j.id, j.state, j.error) for j in ran]
                    # The job handed to two processes ran once: one version per job.
                    assert per_job[a] == 1 and per_job[b] == 1, per_job
                    # One train job of a project at a time: their run intervals do not overlap.
                    first, second = sorted(ran, key=lambda j: j.started_at)
                    assert first.finished_at <= second.started_at, [(j.id, j.started_at, j.finished_at) for j in ran]
                    # The newest version is current: an older job never switches the queue back.
                    assert project.current_model_version_id == versions[-1].id, (
                        project.current_model_version_id, [(v.id, v.job_id) for v in versions])
                    assert with_preds.get(project.current_model_version_id) == 300, with_preds
                    assert len(with_preds) <= 2 and all(n == 300 for n in with_preds.values()), with_preds
                    served = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 3}).json()["items"]
                    assert served and all(i["model_version"] == project.current_model_version_id for i in served)
                run_step({n: "exit" for n in names})
            finally:
                for p in procs:
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
