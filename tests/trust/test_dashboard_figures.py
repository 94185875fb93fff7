"""The dashboard's figures say what they mean: labels to the target within the pool, "due" only with
a retrain queued, accuracy with its interval and never "reached" on a handful, model numbers per
project, a batch undo as one action."""

from __future__ import annotations

from app.db import session_scope
from app.models import Project, Sample
from tests.conftest import digits_pngs, running_worker, upload, wait_for_job


def _project(admin, name: str, n: int, **settings) -> tuple[int, list[dict], dict]:
    cfg = {"auto_pretrain": False, "auto_embed": False} | settings
    pid = admin.post("/projects", json={"name": name, "classes": [str(i) for i in range(10)],
                                        "settings": cfg}).json()["id"]
    items = digits_pngs(n)
    assert upload(admin, pid, [(f, d) for f, d, _ in items]).status_code == 201
    truth = {f: c for f, _, c in items}
    return pid, admin.get(f"/projects/{pid}/samples", params={"limit": 1000}).json()["items"], truth


def test_labels_to_target_within_the_pool_and_reached_only_on_enough_audit_labels():
    from app.services.figures import MIN_AUDIT_LABELS, target

    p = Project(name="p", classes=["a", "b"], settings={"target_accuracy": 0.95})
    few = {"accuracy_estimate": 1.0, "ci_low": 0.44, "ci_high": 1.0, "audit_labels": 3,
           "labels_to_target": {"target": 0.95, "labels_needed": 0}}
    assert target(p, few, 300)["status"] == "on_few_labels" and target(p, few, 300)["labels_needed"] is None
    enough = few | {"audit_labels": MIN_AUDIT_LABELS}
    assert target(p, enough, 300)["status"] == "reached"
    # "171,092 more labels to 95%" on a 400-image project: not reachable with this model.
    far = {"accuracy_estimate": 0.6, "audit_labels": 12,
           "labels_to_target": {"target": 0.95, "labels_needed": 171_092, "curve_levels_at": 0.97}}
    assert (target(p, far, 380)["status"], target(p, far, 380)["labels_needed"]) == ("not_reachable", None)
    # The fitted curve levels off below the target.
    flat = far | {"labels_to_target": {"target": 0.95, "labels_needed": None, "curve_levels_at": 0.8}}
    assert target(p, flat, 380)["status"] == "not_reachable"
    near = far | {"labels_to_target": {"target": 0.95, "labels_needed": 120, "curve_levels_at": 0.99}}
    assert (target(p, near, 380)["status"], target(p, near, 380)["labels_needed"]) == ("needs", 120)
    unsure = far | {"labels_to_target": {"target": 0.95, "labels_needed": None, "curve_levels_at": None}}
    assert target(p, unsure, 380)["status"] == "unknown"


def test_next_retrain_is_due_only_when_a_train_is_queued(admin):
    pid, samples, truth = _project(admin, "due", 10, retrain_every=3)
    for n, s in enumerate(samples[:3], start=1):
        assert admin.post(f"/projects/{pid}/labels", json={"sample_id": s["id"], "label": truth[s["filename"]]}
                          ).status_code == 201
        r = admin.get(f"/projects/{pid}/metrics").json()["retrain"]
        if n < 3:
            assert r == {"labels_to_go": 3 - n, "job": None}
    assert r["labels_to_go"] == 0 and r["job"]["state"] == "queued"
    assert admin.post(f"/jobs/{r['job']['id']}/cancel").status_code == 200
    assert admin.get(f"/projects/{pid}/metrics").json()["retrain"]["job"] is None


def test_a_batch_undo_is_one_action_in_the_activity(admin):
    pid, samples, _ = _project(admin, "act", 40)
    batch = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": s["id"], "label": "3"} for s in samples[:30]],
                       headers={"X-Label-Batch": "1"}).json()["batch_id"]
    one = admin.post(f"/projects/{pid}/labels", json={"sample_id": samples[30]["id"], "label": "4"}).json()
    assert admin.delete(f"/label-batches/{batch}").status_code == 200
    assert admin.delete(f"/labels/{one['items'][0]['id']}").status_code == 200
    a = admin.get(f"/projects/{pid}/activity", params={"limit": 12}).json()
    assert [(p["username"], p["labels"], p["undos"]) for p in a["annotators"]] == [("admin", 31, 2)]
    label_events = [(e["event"], e.get("count")) for e in a["events"] if "job_id" not in e]
    assert label_events == [("undo", None), ("undo batch", 30), ("label", None), ("label batch", 30)]


def test_model_numbers_are_per_project_and_the_card_shows_the_interval(admin, settings):
    first, s1, t1 = _project(admin, "first", 30, retrain_every=1000)  # trains only when asked
    pid, samples, truth = _project(admin, "second", 60, retrain_every=1000)
    with session_scope(settings.database_url) as s:  # ten audit samples, whatever the import's pick was
        for n, row in enumerate(samples):
            s.get(Sample, row["id"]).is_audit = n < 10
    for proj, rows, tr, n in ((first, s1, t1, 10), (pid, samples, truth, 30)):
        assert admin.post(f"/projects/{proj}/labels", json=[
            {"sample_id": r["id"], "label": tr[r["filename"]]} for r in rows[:n]]).status_code == 201
    with running_worker(settings):
        for proj in (first, first, pid):
            job = admin.post(f"/projects/{proj}/jobs", json={"kind": "train"}).json()
            done = wait_for_job(admin, job["id"])
            assert done["state"] == "succeeded", (done["message"], done.get("error"), done.get("result"))
    m = admin.get(f"/projects/{pid}/metrics").json()
    assert m["model_version"] == 3 and m["model_number"] == 1  # ids are shared; numbers are the project's
    assert [p["number"] for p in m["learning_curve"]] == [1]
    assert [p["number"] for p in admin.get(f"/projects/{first}/metrics").json()["learning_curve"]] == [1, 2]
    card = next(p for p in admin.get("/projects").json() if p["id"] == pid)
    assert card["current_model_number"] == 1 and card["audit_label_count"] == 10
    lo, hi = card["accuracy_ci"]
    assert lo <= card["accuracy_estimate"] <= hi and hi - lo > 0.2  # ten audit labels: a wide interval
    assert m["labels_to_target"]["status"] != "reached"  # not on ten audit labels
    item = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 1}).json()["items"][0]
    assert (item["model_version"], item["model_number"]) == (m["model_version"], 1)
