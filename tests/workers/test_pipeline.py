"""The teaching loop end to end with a real worker: embed on arrival, pretrain, cold start, retrain
after K labels, cancel, and a worker killed mid-pretraining."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import select

from tests.conftest import (
    digits_pngs,
    imagefolder_zip,
    running_worker,
    upload,
    wait_for_job,
    worker_app,
)


@pytest.fixture
def loop(tmp_path, sqlite_url):
    with worker_app(tmp_path, sqlite_url) as pair:
        yield pair


def _jobs(admin, pid):
    return {j["kind"]: j for j in reversed(admin.get(f"/projects/{pid}/jobs").json())}


def _new_project(admin, n=300, **settings):
    cfg = {"auto_pretrain": True, "pretrain_budget_s": 6, "retrain_every": 10, "batch_size": 10} | settings
    cfg.setdefault("pretrain_total_budget_s", cfg["pretrain_budget_s"])  # one chunk (tests/scheduling: more)
    pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                        "settings": cfg}).json()["id"]
    items = digits_pngs(n)
    assert upload(admin, pid, [("digits.zip", imagefolder_zip(items))]).status_code == 201
    return pid, {f"digits/{c}/{name}": c for name, _, c in items}


def test_the_loop_runs_itself(loop):
    settings, admin = loop
    pid, truth = _new_project(admin)
    kinds = [j["kind"] for j in admin.get(f"/projects/{pid}/jobs").json()]
    assert sorted(kinds) == ["embed", "pretrain"]  # queued by the import itself
    with running_worker(settings):
        jobs = _jobs(admin, pid)
        seen_progress = []
        deadline = time.monotonic() + 120
        while (job := admin.get(f"/jobs/{jobs['pretrain']['id']}").json())["state"] in ("queued", "running"):
            if job["state"] == "running" and 0 < job["progress"] < 1:
                seen_progress.append((job["progress"], job["message"]))
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["state"] == "succeeded", job
        assert seen_progress and any("img/s" in m or "images/s" in m for _, m in seen_progress), seen_progress
        project = admin.get(f"/projects/{pid}").json()
        assert project["current_backbone_version"] == job["result"]["backbone_version"]
        assert project["current_embedding_version"] == job["result"]["embedding_version"]

        # The pretrain schedules a train: from zero labels the queue serves cold-start picks.
        train = wait_for_job(admin, _jobs(admin, pid)["train"]["id"])
        assert train["state"] == "succeeded", train
        page = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 10}).json()["items"]
        picked = [i for i in page if not i["is_audit"]]
        assert picked and all(i["strategy"] == "cold_start" and i["suggestion"] is None for i in picked)
        assert len({truth[i["filename"]] for i in picked}) >= 5  # cluster-typical picks cover many digits

        # Label 10 with the truth: a retrain is scheduled by itself and the queue moves to it.
        first_model = page[0]["model_version"]
        r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": i["sample_id"], "label": truth[i["filename"]]}
                                                        for i in page])
        assert r.status_code == 201
        deadline = time.monotonic() + 60
        while admin.get(f"/projects/{pid}").json()["current_model_version"] == first_model:
            assert time.monotonic() < deadline, "no automatic retrain after retrain_every labels"
            time.sleep(0.3)
        page = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 5}).json()["items"]
        assert all(i["suggestion"] is not None and i["model_version"] != first_model for i in page)
        metrics = admin.get(f"/projects/{pid}/metrics").json()
        assert metrics["labelled_count"] == 10 and sum(metrics["class_balance"].values()) == 10
        assert [p["labels"] for p in metrics["learning_curve"]][-1] == 10
        assert metrics["labels_until_retrain"] == 10

        history = admin.get(f"/samples/{page[0]['sample_id']}/labels").json()
        assert history == []  # not labelled yet; a label now records what was shown:
        admin.post(f"/projects/{pid}/labels", json={"sample_id": page[0]["sample_id"], "label": "3"})
        shown = admin.get(f"/samples/{page[0]['sample_id']}/labels").json()[0]
        assert shown["model_version"] == page[0]["model_version"]
        assert shown["suggested_label"] == page[0]["suggestion"]["label"]


def test_cancel_and_bad_params_leave_the_project_as_it_was(loop):
    settings, admin = loop
    pid, _ = _new_project(admin, n=200, auto_pretrain=False)
    bad = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain", "params": {"method": "astrology"}})
    assert bad.status_code == 422 and "astrology" in bad.json()["detail"]
    with running_worker(settings):
        wait_for_job(admin, _jobs(admin, pid)["embed"]["id"])
        before = admin.get(f"/projects/{pid}").json()
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain", "params": {"budget_seconds": 120}}).json()
        wait_for_job(admin, job["id"], states=("running",))
        assert admin.post(f"/jobs/{job['id']}/cancel").status_code == 200
        done = wait_for_job(admin, job["id"], timeout=30)
        assert done["state"] == "cancelled"
        after = admin.get(f"/projects/{pid}").json()
        assert after["current_backbone_version"] == before["current_backbone_version"] is None
        assert after["current_embedding_version"] == before["current_embedding_version"]


def test_a_worker_killed_mid_pretraining_is_recovered(loop):
    settings, admin = loop
    pid, _ = _new_project(admin, n=200, auto_pretrain=False, auto_embed=False)
    job = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain", "params": {"budget_seconds": 8}}).json()
    with running_worker(settings) as worker:
        deadline = time.monotonic() + 60
        while admin.get(f"/jobs/{job['id']}").json()["progress"] < 0.1:
            assert time.monotonic() < deadline
            time.sleep(0.2)
        worker.kill()  # SIGKILL: no chance to clean up or acknowledge
        worker.wait()
    stuck = admin.get(f"/jobs/{job['id']}").json()
    assert stuck["state"] == "running"
    assert admin.get(f"/projects/{pid}").json()["current_backbone_version"] is None
    time.sleep(settings.job_stale_seconds + 1)
    with running_worker(settings):  # a new worker finds the stale job and runs it again
        done = wait_for_job(admin, job["id"], timeout=120)
    assert done["state"] == "succeeded", done
    project = admin.get(f"/projects/{pid}").json()
    assert project["current_backbone_version"] == done["result"]["backbone_version"]

    from app import embedding_store
    from app.db import session_scope
    from app.models import EmbeddingVersion

    with session_scope(settings.database_url) as s:
        ev = s.get(EmbeddingVersion, project["current_embedding_version"])
        ids, vectors = embedding_store.read(settings.media_path, ev.file_key, ev.ids_key)
    assert len(ids) == 200 and np.isfinite(np.asarray(vectors, dtype=np.float32)).all()


def _watch(admin, job_id: int, timeout: float = 120) -> tuple[dict, list[str]]:
    """Poll a job to its end; returns it and the progress messages seen while it ran."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    while (job := admin.get(f"/jobs/{job_id}").json())["state"] in ("queued", "running"):
        if job["state"] == "running" and job["message"] not in messages:
            messages.append(job["message"])
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    return job, messages


def test_finetune_adapts_the_pretrained_backbone_to_the_labels(loop):
    settings, admin = loop
    pid, truth = _new_project(admin, n=300, pretrain_budget_s=4, retrain_every=100_000)
    bad = admin.post(f"/projects/{pid}/jobs", json={"kind": "finetune", "params": {"epochs": 0}})
    assert bad.status_code == 422 and "epochs" in bad.json()["detail"]
    with running_worker(settings):
        pretrained = wait_for_job(admin, _jobs(admin, pid)["pretrain"]["id"])
        assert pretrained["state"] == "succeeded", pretrained
        pretrained_bv = pretrained["result"]["backbone_version"]

        # Without labels there is nothing to fine-tune on: it fails, saying why, and nothing changes.
        early, _ = _watch(admin, admin.post(f"/projects/{pid}/jobs", json={"kind": "finetune"}).json()["id"])
        assert early["state"] == "failed" and "at least 10 labels" in early["error"], early
        assert admin.get(f"/projects/{pid}").json()["current_backbone_version"] == pretrained_bv

        # The labels take in audit samples on purpose: the data check after the embedding keeps duplicate
        # groups on one side of the audit sample, which on 300 look-alike digits leaves it a few samples
        # anywhere in the pool (once none among the first 100). Chosen after every job has ended, so no
        # later move changes the sides (only unlabelled samples move, and these are labelled).
        while busy := [j for j in admin.get(f"/projects/{pid}/jobs").json() if j["state"] in ("queued", "running")]:
            assert wait_for_job(admin, busy[0]["id"], timeout=180)["state"] == "succeeded", busy[0]
        from app.db import session_scope
        from app.models import Sample

        with session_scope(settings.database_url) as s:
            audit = set(s.scalars(select(Sample.id).where(Sample.project_id == pid, Sample.is_audit)))
        samples = admin.get(f"/projects/{pid}/samples", params={"limit": 1000}).json()["items"]
        labelled = ([x for x in samples if x["id"] in audit][:5] + [x for x in samples if x["id"] not in audit])[:100]
        assert admin.post(f"/projects/{pid}/labels", json=[
            {"sample_id": s["id"], "label": truth[s["filename"]]} for s in labelled]).status_code == 201
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "finetune", "params": {"epochs": 10}})
        assert job.status_code == 201 and job.json()["kind"] == "finetune"
        done, messages = _watch(admin, job.json()["id"])
        assert done["state"] == "succeeded", done
        # What was seen while it ran (polled, so a quick phase may pass unseen): its own phases only.
        # ("started" is every job's first message, seen when a poll lands before the first phase.)
        assert messages and all(m.startswith(("started", "decoding", "fine-tuning on", "embedding"))
                                for m in messages), messages
        assert all("loss" in m for m in messages if m.startswith("fine-tuning on")), messages
        # Audit samples stay out of the fine-tuning set (the accuracy estimate is scored on them).
        with session_scope(settings.database_url) as s:
            audit = set(s.scalars(select(Sample.id).where(Sample.project_id == pid, Sample.is_audit)))
        assert audit & {s["id"] for s in labelled}, "the test needs audit samples among the labelled"
        assert done["result"]["labels"] == len([s for s in labelled if s["id"] not in audit])
        project = admin.get(f"/projects/{pid}").json()
        assert project["current_backbone_version"] == done["result"]["backbone_version"] != pretrained_bv
        assert project["current_embedding_version"] == done["result"]["embedding_version"]

        versions = admin.get(f"/projects/{pid}/versions").json()
        newest, previous = versions["backbones"][:2]
        assert newest["method"] == "finetune" and newest["current"] and not previous["current"]
        assert newest["params"]["from_backbone_version"] == previous["id"] == pretrained_bv
        assert newest["params"]["from_method"] == previous["method"]

        # A train on the new embeddings follows by itself; the queue then serves its suggestions.
        follow = [j for j in admin.get(f"/projects/{pid}/jobs").json()
                  if j["kind"] == "train" and j["id"] > done["id"]]
        assert len(follow) == 1 and follow[0]["params"]["reason"] == "fine-tuned backbone"
        trained = wait_for_job(admin, follow[0]["id"])
        assert trained["state"] == "succeeded", trained
        model = next(m for m in admin.get(f"/projects/{pid}/versions").json()["models"] if m["current"])
        assert model["embedding_version_id"] == done["result"]["embedding_version"]
        preds = admin.get(f"/projects/{pid}/predictions", params={"limit": 1000}).json()["items"]
        rest = {s["id"]: truth[s["filename"]] for s in samples[100:]}
        right = sum(p["label"] == rest[p["sample_id"]] for p in preds if p["sample_id"] in rest)
        print(f"fine-tuned: {right}/{len(rest)} right on the unlabelled rest")
        assert right / len(rest) > 0.7
