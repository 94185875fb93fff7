"""The retrain trigger counts new labels the same way on both sides (the label counters and the
model's own record), through undo, relabel and second opinions, with a real worker training.

"New labels" (docs/architecture.md): primary "set" revisions, that is first labels and corrections
(a relabel by its labeller, a label after an undo). Second opinions and undos do not count."""

from __future__ import annotations

import csv
import io
import random
from collections import Counter

from tests.conftest import digits_pngs, running_worker, upload, wait_for_job

K = 23
CLASSES = [str(i) for i in range(10)]


def _train_jobs(admin, pid: int) -> list[dict]:
    return [j for j in admin.get(f"/projects/{pid}/jobs").json() if j["kind"] == "train"]


def _script(seed: int = 7) -> list[str]:
    """200 first labels, 30 undos, 30 relabels, 20 second opinions, interleaved."""
    rng = random.Random(seed)
    rest = ["undo"] * 30 + ["relabel"] * 30 + ["second"] * 20
    rng.shuffle(rest)
    ops = ["new"] * 10  # something to undo, relabel and second-guess first
    news = 190
    while rest or news:
        if rest and (not news or rng.random() < 0.3):
            ops.append(rest.pop())
        else:
            ops.append("new")
            news -= 1
    return ops


def test_one_retrain_per_k_new_labels_through_undo_relabel_and_second_opinions(admin, settings):
    pid = admin.post("/projects", json={"name": "trigger", "classes": CLASSES, "settings": {
        "auto_pretrain": False, "auto_embed": False, "retrain_every": K, "batch_size": 10}}).json()["id"]
    items = digits_pngs(250)
    assert upload(admin, pid, [(n, d) for n, d, _ in items]).status_code == 201
    truth = {n: c for n, _, c in items}
    fresh = [(s["id"], truth[s["filename"]]) for s in admin.get(f"/projects/{pid}/samples",
                                                                 params={"limit": 1000}).json()["items"]]
    ann, bob = admin.new_user("ann"), admin.new_user("bob")
    for name in ("ann", "bob"):
        assert admin.post(f"/projects/{pid}/members", json={"username": name, "role": "annotator"}).status_code < 300
    rng = random.Random(1)
    mine: list[tuple[int, int]] = []  # ann's live labels, oldest first: (label id, sample id)
    counted = seen = trains = 0  # new labels so far; the counter the newest model read; trains queued
    with running_worker(settings):
        for n, op in enumerate(_script()):
            if op == "undo":
                lid, _ = mine.pop()
                assert ann.delete(f"/labels/{lid}").status_code == 200
            elif op == "second":
                sid = rng.choice(sorted({s for _, s in mine}))
                r = bob.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": rng.choice(CLASSES)})
                assert r.status_code == 201 and r.json()["items"][0]["opinion"] == "second", r.text
            else:
                if op == "new":
                    sid, label = fresh.pop()
                else:  # her own correction, also of a sample someone gave a second opinion on
                    sid, label = rng.choice(mine)[1], rng.choice(CLASSES)
                r = ann.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": label})
                assert r.status_code == 201 and r.json()["items"][0]["opinion"] == "primary", (op, r.text)
                mine.append((r.json()["items"][0]["id"], sid))
                counted += 1
            due = counted - seen >= K
            trains += due
            jobs = _train_jobs(admin, pid)
            # One train each time K new labels have come since the last, and none queued between.
            assert len(jobs) == trains, (n, op, counted, seen, len(jobs))
            if due:
                assert wait_for_job(admin, jobs[0]["id"])["state"] == "succeeded"
                seen = counted
            left = admin.get(f"/projects/{pid}/metrics").json()["labels_until_retrain"]
            assert left == K - (counted - seen), (n, op, left, counted, seen)
    assert counted == 230 and len(_train_jobs(admin, pid)) == 230 // K

    # The dashboard's counters are a count over the export.
    rows = list(csv.DictReader(io.StringIO(admin.get(f"/projects/{pid}/export").text)))
    m = admin.get(f"/projects/{pid}/metrics").json()
    assert m["labelled_count"] == admin.get(f"/projects/{pid}").json()["labelled_count"] == len(rows)
    assert m["human_label_count"] == sum(r["source"] != "import" for r in rows) == len(rows)
    assert m["class_balance"] == {c: Counter(r["label"] for r in rows).get(c, 0) for c in CLASSES}


def test_a_reviews_decision_counts_as_a_new_label(admin):
    """A decision is a correction: it counts, and it queues the retrain that is due (it did not look)."""
    pid = admin.post("/projects", json={"name": "review", "classes": ["a", "b"], "settings": {
        "auto_pretrain": False, "auto_embed": False, "retrain_every": 3}}).json()["id"]
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(6)]).status_code == 201
    sids = [s["id"] for s in admin.get(f"/projects/{pid}/samples").json()["items"]]
    bea = admin.new_user("bea")
    admin.post(f"/projects/{pid}/members", json={"username": "bea", "role": "annotator"})
    for sid in sids[:2]:
        assert admin.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": "a"}).status_code == 201
    assert bea.post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "b"}).status_code == 201
    assert _train_jobs(admin, pid) == []  # two new labels; the second opinion does not count
    review = admin.get(f"/projects/{pid}/reviews").json()[0]
    assert admin.post(f"/reviews/{review['id']}/resolve", json={"label": "b"}).status_code == 200
    assert len(_train_jobs(admin, pid)) == 1
    assert admin.get(f"/projects/{pid}/metrics").json()["retrain"]["job"]["state"] == "queued"
