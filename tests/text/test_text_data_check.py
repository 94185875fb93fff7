"""Near-duplicates and outliers on a text project (issues 18 and 19): the train job's check used to read
each document as an image ("storage key escapes the media directory"), failed, and left the Data problems
view answering 409 for text for ever. Now near-copies of a news item (a word changed, a source line added)
are grouped with their originals by the embedding, and the least typical documents are listed."""

from __future__ import annotations

import json

from tests.conftest import running_worker, upload, wait_for_job
from tests.text.test_text_import import CLASSES, ag_news
from tests.workers.test_pipeline import _jobs, loop  # noqa: F401 - the worker tests' fixture


def test_a_text_project_gets_its_duplicate_groups_and_outliers(loop):  # noqa: F811
    settings, admin = loop
    pid = admin.post("/projects", json={"name": "news", "kind": "text", "classes": CLASSES, "settings": {
        "retrain_every": 100_000, "auto_pretrain": False}}).json()["id"]
    rows = ag_news(300)
    near = {f"d{i}": rows[i]["text"].strip() + " (Reuters)" for i in (3, 50, 120)}
    docs = [{"id": f"d{i}", "text": r["text"]} for i, r in enumerate(rows)]
    docs += [{"id": f"{k}-copy", "text": t} for k, t in near.items()]
    body = "\n".join(json.dumps(d) for d in docs).encode()
    assert upload(admin, pid, [("news.jsonl", body)]).json()["created"] == 303
    with running_worker(settings):
        assert wait_for_job(admin, _jobs(admin, pid)["embed"]["id"])["state"] == "succeeded"
        train = wait_for_job(admin, _jobs(admin, pid)["train"]["id"])
        assert train["state"] == "succeeded", train
    assert "data_check" in train["result"], train["result"]  # the check ran and stored its lists
    ids = {s["filename"]: s["id"] for s in admin.get(f"/projects/{pid}/samples", params={"limit": 500}).json()["items"]}
    dup = admin.get(f"/projects/{pid}/duplicates")
    assert dup.status_code == 200, dup.text
    groups = [set(g["sample_ids"]) for g in dup.json()["groups"]]
    for k in near:
        pair = {ids[k], ids[f"{k}-copy"]}
        assert any(pair <= g for g in groups), (k, groups)
    out = admin.get(f"/projects/{pid}/outliers")
    assert out.status_code == 200, out.text
    listed = out.json()["items"]
    assert listed and all(o["reason"] != "blank" for o in listed), listed
