"""A real Celery worker process runs jobs queued through the API, on the SQLite broker and on Redis."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import (
    ADMIN_PASSWORD,
    Api,
    digits_pngs,
    make_settings,
    running_worker,
    upload,
    wait_for_job,
)


def _admin_api(settings) -> tuple[TestClient, Api]:
    from app.db import session_scope
    from app.main import create_app
    from app.services.auth import create_user

    with session_scope(settings.database_url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)
    client = TestClient(create_app(settings))
    return client, Api(client).login_as("admin", ADMIN_PASSWORD)


def _train_through_the_api(settings) -> None:
    client, admin = _admin_api(settings)
    with client:
        pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                            "settings": {"auto_pretrain": False}}).json()["id"]
        items = digits_pngs(200)
        assert upload(admin, pid, [(n, d) for n, d, _ in items]).status_code == 201
        truth = {n: c for n, _, c in items}
        samples = admin.get(f"/projects/{pid}/samples", params={"limit": 1000}).json()["items"]
        labels = [{"sample_id": s["id"], "label": truth[s["filename"]]} for s in samples[:60]]
        assert admin.post(f"/projects/{pid}/labels", json=labels).status_code == 201

        # Queued before the worker exists: it must run once the worker starts.
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()
        assert job["state"] == "queued"
        with running_worker(settings):
            done = wait_for_job(admin, job["id"])
            assert done["state"] == "succeeded", done
            assert done["progress"] == 1.0 and done["started_at"] and done["finished_at"]

            items = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 10}).json()["items"]
            assert items and all(i["model_version"] == done["result"]["model_version"] for i in items)
            assert all(i["suggestion"] is not None for i in items)
            preds = admin.get(f"/projects/{pid}/predictions").json()
            assert len(preds["items"]) == 200
            # The queue serves what the strategy picked, which the model is less sure of than most.
            picked = [i for i in items if not i["is_audit"]]
            assert picked and all(i["reason"] and i["details"] for i in picked)
            all_scores = sorted(p["score"] for p in preds["items"])
            assert sum(i["score"] for i in picked) / len(picked) > all_scores[len(all_scores) // 2]
            unlabelled = {s["id"]: truth[s["filename"]] for s in samples[60:]}
            right = sum(p["label"] == unlabelled[p["sample_id"]]
                        for p in preds["items"] if p["sample_id"] in unlabelled)
            assert right / len(unlabelled) > 0.6  # raw pixels on 60 digit labels: far above chance (0.1)

            # A job that cannot succeed ends failed with its reason, and the project keeps its model.
            empty = admin.post("/projects", json={"name": "empty", "classes": ["a", "b"]}).json()["id"]
            bad = admin.post(f"/projects/{empty}/jobs", json={"kind": "train"}).json()
            failed = wait_for_job(admin, bad["id"])
            assert failed["state"] == "failed" and "no images" in failed["error"]


def test_worker_on_the_sqlite_broker(tmp_path, sqlite_url):
    _train_through_the_api(make_settings(tmp_path, sqlite_url))


@pytest.mark.redis
def test_worker_on_redis_with_postgres(tmp_path, redis_url, request):
    from tests.conftest import fresh_database

    with fresh_database("postgres", tmp_path, request) as url:
        _train_through_the_api(make_settings(tmp_path, url, broker_url=redis_url))


def test_non_admins_cannot_start_jobs(admin, digits_project):
    pid = digits_project["id"]
    alice = admin.new_user("alice")
    admin.post(f"/projects/{pid}/members", json={"username": "alice", "role": "annotator"})
    assert alice.post(f"/projects/{pid}/jobs", json={"kind": "train"}).status_code == 403
    assert admin.post(f"/projects/{pid}/jobs", json={"kind": "dance"}).status_code == 422


def test_a_second_train_request_folds_into_the_waiting_one(admin, digits_project):
    pid = digits_project["id"]
    first = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"})
    second = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"})
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert len(admin.get(f"/projects/{pid}/jobs").json()) == 1
    cancelled = admin.post(f"/jobs/{first.json()['id']}/cancel").json()
    assert cancelled["state"] == "cancelled"
