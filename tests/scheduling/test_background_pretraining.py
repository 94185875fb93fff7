"""Background pretraining in chunks, with a real worker process and broker: each chunk resumes the
run's checkpoint, a second request joins the run, the project switches only to a backbone that is
better on its own labels (a refusal is recorded with its figures), and the status line says what is
happening."""

from __future__ import annotations

import os
import time

import pytest

from tests.conftest import digits_pngs, imagefolder_zip, running_worker, upload
from tests.workers.test_pipeline import loop  # noqa: F401 - the fixture: an app, its admin, a settings object


def _project(admin, n: int = 120, name: str = "digits", **settings) -> tuple[int, dict[str, str]]:
    cfg = {"auto_pretrain": False, "auto_embed": True, "retrain_every": 100_000} | settings
    pid = admin.post("/projects", json={"name": name, "classes": [str(i) for i in range(10)],
                                        "settings": cfg}).json()["id"]
    items = digits_pngs(n)
    assert upload(admin, pid, [("digits.zip", imagefolder_zip(items))]).status_code == 201
    return pid, {f"digits/{c}/{name}": c for name, _, c in items}


def _pretrain_jobs(admin, pid: int) -> list[dict]:
    return sorted((j for j in admin.get(f"/projects/{pid}/jobs").json() if j["kind"] == "pretrain"),
                  key=lambda j: j["id"])


def test_chunks_resume_the_run_a_second_request_joins_it_and_the_status_says_so(loop):  # noqa: F811
    settings, admin = loop
    # A total of four chunks' worth: a chunk may overrun its 2 CPU-seconds by a step or two (the first
    # steps are the slowest), and a first chunk that took the whole budget left no second (seen in CI-like runs).
    pid, _ = _project(admin, pretrain_budget_s=2, pretrain_total_budget_s=8)
    first = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain"})
    assert first.status_code == 201, first.text
    again = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain", "params": {"method": "rotation"}})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert "already under way" in again.json()["note"] and "not used" in again.json()["note"]
    assert admin.get(f"/projects/{pid}/status").json()["line"].startswith(("new images wait", "first backbone"))

    lines: list[str] = []
    with running_worker(settings):
        deadline = time.monotonic() + 150
        while True:
            jobs = _pretrain_jobs(admin, pid)
            line = admin.get(f"/projects/{pid}/status").json()["line"]
            if line not in lines:
                lines.append(line)
            if len(jobs) >= 2 and all(j["state"] not in ("queued", "running") for j in jobs):
                break
            assert time.monotonic() < deadline, ([(j["state"], j.get("result"), j.get("message")) for j in jobs], lines)
            time.sleep(0.2)
    one, two, last = jobs[0], jobs[1], jobs[-1]
    assert all(j["state"] == "succeeded" for j in jobs), jobs
    # The second chunk continues the first: same run checkpoint, its step count carries on, and the
    # run ends at its total budget (CPU seconds), not at two chunks' worth of fresh training.
    assert two["params"]["run"] == f"checkpoints/p{pid}/run{one['id']}.pt" and two["params"]["chunk"] == 2
    assert two["result"]["steps"] > one["result"]["steps"] > 0
    assert one["result"]["trained_s"] == pytest.approx(2, abs=3.0)
    assert last["result"]["trained_s"] == pytest.approx(8, abs=2.0)
    assert one["result"]["next_chunk_job"] == two["id"] and last["result"]["next_chunk_job"] is None
    # The worker trains on one thread less than the cores (the API shares the machine).
    assert one["result"]["threads"] == max(1, len(os.sched_getaffinity(0)) - 1)
    # No labels: the first backbone replaces pixels, the second chunk of the same run replaces the first.
    assert one["result"]["switched"] and two["result"]["switched"]
    assert admin.get(f"/projects/{pid}").json()["current_backbone_version"] == last["result"]["backbone_version"]
    versions = admin.get(f"/projects/{pid}/versions").json()["backbones"]
    reasons = {v["id"]: v["metrics"]["switch"]["reason"] for v in versions}
    assert reasons[one["result"]["backbone_version"]].startswith("first backbone")
    assert reasons[two["result"]["backbone_version"]].startswith("the same pretraining, trained longer")
    # What the expert read meanwhile. Each chunk trains for 2 s and progress is written every 2 s, so on a
    # busy machine one of the two phases can pass between polls (seen in a full run): at least one of them
    # must have been read, in the expert's words.
    first = [line for line in lines if line.startswith("first backbone training; suggestions may get better in")]
    later = [line for line in lines if line.startswith("backbone improving, ") and "% trained" in line]
    assert first or later, lines


def test_a_backbone_that_is_not_better_on_the_labels_is_not_used_and_the_refusal_is_recorded(loop):  # noqa: F811
    settings, admin = loop
    pid, truth = _project(admin, pretrain_budget_s=2, pretrain_total_budget_s=2)
    samples = admin.get(f"/projects/{pid}/samples", params={"limit": 1000}).json()["items"]
    labels = [{"sample_id": s["id"], "label": truth[s["filename"]]} for s in samples[:40]]
    assert admin.post(f"/projects/{pid}/labels", json=labels).status_code == 201
    # min_gain 1: the new figure must beat the current one by 100 points, which no accuracy can; the
    # comparison itself runs as always (both embeddings scored on the same 40 labels).
    job = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain", "params": {"min_gain": 1}}).json()
    with running_worker(settings):
        deadline = time.monotonic() + 90
        while (done := admin.get(f"/jobs/{job['id']}").json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, done
            time.sleep(0.3)
    assert done["state"] == "succeeded", done
    assert done["result"]["switched"] is False and "kept the one in use" in done["result"]["verdict"]
    project = admin.get(f"/projects/{pid}").json()
    assert project["current_backbone_version"] is None  # still the pixels embedding
    version = next(v for v in admin.get(f"/projects/{pid}/versions").json()["backbones"]
                   if v["id"] == done["result"]["backbone_version"])
    verdict = version["metrics"]["switch"]
    assert not version["current"] and verdict["switch"] is False and verdict["labels"] == 40
    assert verdict["figure"] == "knn" and 0 <= verdict["new"] <= 1 and 0 <= verdict["current"] <= 1
    assert "nearest-neighbour accuracy on 40 labels" in verdict["reason"]


def test_two_projects_pretrainings_take_turns_chunk_by_chunk(loop):  # noqa: F811
    settings, admin = loop
    pids = [_project(admin, n=40, name=name, pretrain_budget_s=1, pretrain_total_budget_s=2)[0] for name in "ab"]
    for pid in pids:
        assert admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain"}).status_code == 201
    with running_worker(settings):
        deadline = time.monotonic() + 120
        while True:
            jobs = [j for pid in pids for j in _pretrain_jobs(admin, pid)]
            if len(jobs) == 4 and all(j["state"] == "succeeded" for j in jobs):
                break
            assert time.monotonic() < deadline and not any(j["state"] == "failed" for j in jobs), jobs
            time.sleep(0.3)
    # Each chunk's successor goes to the back of the long queue: the other project's chunk runs between.
    order = [(j["project_id"], j["params"].get("chunk", 1)) for j in sorted(jobs, key=lambda j: j["started_at"])]
    assert order == [(pids[0], 1), (pids[1], 1), (pids[0], 2), (pids[1], 2)], order
