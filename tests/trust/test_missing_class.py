"""A class that never comes up: the dashboard flags it, and the teach view's "unexplored groups" offer
candidates for it (the model cannot suggest a class it has never been shown)."""

from __future__ import annotations

from tests.conftest import digits_pngs, running_worker, upload, wait_for_job

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_a_class_nobody_labelled_is_flagged_and_candidates_are_offered(admin, settings):
    pid = admin.post("/projects", json={"name": "photos", "classes": NAMES, "settings": {
        "auto_pretrain": False, "auto_embed": False, "retrain_every": 1000}}).json()["id"]
    items = digits_pngs(400)
    assert upload(admin, pid, [(f, d) for f, d, _ in items]).status_code == 201
    truth = {f: NAMES[int(c)] for f, _, c in items}
    samples = admin.get(f"/projects/{pid}/samples", params={"limit": 1000}).json()["items"]
    # Forty labels, none of them "nine" (as a queue that never brought one up would leave it).
    picked = [s for s in samples if truth[s["filename"]] != "nine"][:40]
    assert admin.post(f"/projects/{pid}/labels", json=[
        {"sample_id": s["id"], "label": truth[s["filename"]]} for s in picked]).status_code == 201
    with running_worker(settings):
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()
        assert wait_for_job(admin, job["id"])["state"] == "succeeded"
    flagged = {c["class"]: c for c in admin.get(f"/projects/{pid}/metrics").json()["classes_needing_labels"]}
    assert flagged["nine"] == {"class": "nine", "labels": 0, "predicted": 0}  # never labelled, never predicted
    assert admin.get(f"/projects/{pid}/suggestions", params={"label": "nine"}).json()["items"] == []

    found = admin.get(f"/projects/{pid}/unexplored", params={"limit": 48}).json()["items"]
    assert len(found) >= 20 and all(i["status"] == "unlabelled" for i in found)
    by_id = {s["id"]: truth[s["filename"]] for s in samples}
    nines = sum(by_id[i["sample_id"]] == "nine" for i in found)
    unlabelled = [s for s in samples if s["id"] not in {p["id"] for p in picked}]
    share = sum(truth[s["filename"]] == "nine" for s in unlabelled) / len(unlabelled)
    assert nines >= 2, (nines, len(found), share)
    # The expert ticks a first "nine" among them; then "find more like them" (near a class) brings the rest.
    first = next(i["sample_id"] for i in found if by_id[i["sample_id"]] == "nine")
    assert admin.post(f"/projects/{pid}/labels", json={"sample_id": first, "label": "nine"}).status_code == 201
    near = admin.get(f"/projects/{pid}/neighbours", params={"sample_id": first, "limit": 20}).json()["items"]
    close = sum(by_id[i["sample_id"]] == "nine" for i in near)
    assert close >= 10, close
    print(f"unexplored: {nines} nines of {len(found)} (pool share {share:.1%}); near the first: {close} of 20")
