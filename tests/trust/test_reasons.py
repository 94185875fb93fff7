"""Why the queue asks: in the expert's words with the class names, technical detail beside it, a reason
past the first batch too, and what really chose the picks (random, cold start) recorded as such."""

from __future__ import annotations

from tests.conftest import digits_pngs, running_worker, upload, wait_for_job

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
JARGON = ("margin", "entropy", "cluster", "cold_start", "cold start", "uncovered")


def _project(admin, name: str, strategy: str, n: int = 150):
    pid = admin.post("/projects", json={"name": name, "classes": NAMES, "settings": {
        "auto_pretrain": False, "auto_embed": False, "retrain_every": 1000, "batch_size": 10,
        "strategy": strategy}}).json()["id"]
    items = digits_pngs(n)
    assert upload(admin, pid, [(f, d) for f, d, _ in items]).status_code == 201
    return pid, {f: NAMES[int(c)] for f, _, c in items}


def _train(admin, pid: int) -> None:
    job = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()
    done = wait_for_job(admin, job["id"])
    assert done["state"] == "succeeded", done["message"]


def _page(admin, pid: int, n: int = 30) -> list[dict]:
    items = admin.post(f"/projects/{pid}/queue/lease", params={"limit": n}).json()["items"]
    admin.post(f"/projects/{pid}/queue/release", json={"sample_ids": [i["sample_id"] for i in items]})
    return [i for i in items if not i["is_audit"]]


def test_reasons_say_what_chose_each_item_in_plain_words(admin, settings):
    rand, _ = _project(admin, "margin-from-zero", "margin")
    mixed, truth = _project(admin, "mixed", "mixed")
    with running_worker(settings):
        _train(admin, rand)
        _train(admin, mixed)
        # Margin with no labels picks at random: recorded as random, not as a cold start.
        assert admin.get(f"/projects/{rand}/metrics").json()["strategy"] == "random"
        page = _page(admin, rand)
        assert page and all(i["strategy"] == "random" and i["reason"].startswith("Picked at random") for i in page)

        # Mixed from zero: typical examples of groups nobody labelled, past the first batch too.
        page = _page(admin, mixed)
        assert len(page) > 10 and all(i["strategy"] == "cold_start" and i["reason"] for i in page)
        assert page[0]["reason"] == "A typical example of a group nobody has labelled yet."
        assert "cluster" in page[0]["details"] and "typicality" in page[-1]["details"]

        samples = admin.get(f"/projects/{mixed}/samples", params={"limit": 1000}).json()["items"]
        assert admin.post(f"/projects/{mixed}/labels", json=[
            {"sample_id": s["id"], "label": truth[s["filename"]]} for s in samples[:40]]).status_code == 201
        _train(admin, mixed)
    page = _page(admin, mixed)
    assert len(page) > 10 and all(i["strategy"] == "mixed" and i["reason"] for i in page)
    for i in page:
        words = i["reason"]
        assert not any(j in words.lower() for j in JARGON), words
        assert "torn between" in words or "best guess" in words, words
        assert any(name in words for name in NAMES), words
        assert "uncertainty" in i["details"], i["details"]
