"""Labels (single, batch, idempotent, undo), the leased queue, and the export, over the REST API."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from tests.conftest import digits_pngs, upload


def _project_with_samples(admin, digits_project, n=30):
    pid = digits_project["id"]
    items = digits_pngs(n)
    assert upload(admin, pid, [(name, data) for name, data, _ in items]).status_code == 201
    samples = admin.get(f"/projects/{pid}/samples", params={"limit": 1000}).json()["items"]
    truth = {name: cls for name, _, cls in items}
    return pid, [(s["id"], truth[s["filename"]]) for s in samples]


def test_single_and_batch_labels_update_counts(admin, digits_project):
    pid, samples = _project_with_samples(admin, digits_project)
    (s1, c1), (s2, c2), (s3, c3) = samples[:3]
    r = admin.post(f"/projects/{pid}/labels", json={"sample_id": s1, "label": c1, "duration_ms": 1200})
    assert r.status_code == 201 and r.json()["created"] == 1
    assert r.json()["items"][0]["username"] == "admin"
    r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": s2, "label": c2}, {"sample_id": s3, "label": c3}])
    assert r.json()["created"] == 2
    assert admin.get(f"/projects/{pid}").json()["labelled_count"] == 3
    labelled = admin.get(f"/projects/{pid}/samples", params={"status": "labelled"}).json()["items"]
    assert sorted((s["id"], s["label"]) for s in labelled) == sorted([(s1, c1), (s2, c2), (s3, c3)])


def test_bad_labels_store_nothing(admin, digits_project):
    pid, samples = _project_with_samples(admin, digits_project, 3)
    (s1, _), (s2, _), _ = samples
    r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": s1, "label": "3"}, {"sample_id": s2, "label": "cat"}])
    assert r.status_code == 422 and "cat" in r.json()["detail"]
    r = admin.post(f"/projects/{pid}/labels", json={"sample_id": 10**9, "label": "3"})
    assert r.status_code == 404 and str(10**9) in r.json()["detail"]
    other = admin.post("/projects", json={"name": "other", "classes": ["3"]}).json()
    r = admin.post(f"/projects/{other['id']}/labels", json={"sample_id": s1, "label": "3"})
    assert r.status_code == 404  # another project's sample is not found here
    r = admin.post(f"/projects/{pid}/labels", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = admin.post(f"/projects/{pid}/labels", json={"sample_id": "abc", "label": 3})
    assert r.status_code == 422
    assert admin.get(f"/projects/{pid}").json()["labelled_count"] == 0


def test_idempotency_key_makes_a_retry_safe(admin, digits_project):
    pid, samples = _project_with_samples(admin, digits_project, 3)
    sid, cls = samples[0]
    body = {"sample_id": sid, "label": cls}
    first = admin.post(f"/projects/{pid}/labels", json=body, headers={"Idempotency-Key": "k-1"})
    again = admin.post(f"/projects/{pid}/labels", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    history = admin.get(f"/samples/{sid}/labels").json()
    assert len(history) == 1
    other = admin.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": "9"},
                       headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 422


def test_undo_appends_a_revision_and_restores_the_previous_label(admin, digits_project):
    pid, samples = _project_with_samples(admin, digits_project, 3)
    sid, _ = samples[0]
    first = admin.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": "1"}).json()["items"][0]
    second = admin.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": "2"}).json()["items"][0]
    assert admin.get(f"/samples/{sid}").json()["label"] == "2"
    r = admin.delete(f"/labels/{second['id']}")
    assert r.status_code == 200 and r.json()["action"] == "undo"
    assert admin.get(f"/samples/{sid}").json()["label"] == "1"
    admin.delete(f"/labels/{first['id']}")
    s = admin.get(f"/samples/{sid}").json()
    assert s["label"] is None and s["status"] == "unlabelled"
    assert [h["action"] for h in admin.get(f"/samples/{sid}/labels").json()] == ["set", "set", "undo", "undo"]
    assert admin.delete(f"/labels/{first['id']}").status_code == 422  # already undone


def test_annotators_undo_only_their_own_labels(admin, digits_project):
    pid, samples = _project_with_samples(admin, digits_project, 3)
    alice = admin.new_user("alice")
    admin.post(f"/projects/{pid}/members", json={"username": "alice", "role": "annotator"})
    mine = admin.post(f"/projects/{pid}/labels", json={"sample_id": samples[0][0], "label": "1"}).json()["items"][0]
    assert alice.delete(f"/labels/{mine['id']}").status_code == 403
    hers = alice.post(f"/projects/{pid}/labels", json={"sample_id": samples[1][0], "label": "1"}).json()["items"][0]
    assert alice.delete(f"/labels/{hers['id']}").status_code == 200


def test_queue_leases_each_sample_to_one_annotator(admin, digits_project):
    pid, samples = _project_with_samples(admin, digits_project, 12)
    alice = admin.new_user("alice")
    admin.post(f"/projects/{pid}/members", json={"username": "alice", "role": "annotator"})
    a = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 5}).json()["items"]
    b = alice.post(f"/projects/{pid}/queue/lease", params={"limit": 5}).json()["items"]
    assert len(a) == len(b) == 5
    assert not {i["sample_id"] for i in a} & {i["sample_id"] for i in b}
    assert all(i["strategy"] in ("random", "audit") and i["suggestion"] is None for i in a)
    assert sum(i["is_audit"] for i in a) <= 1  # about one item in ten is from the random audit sample
    # Asking again returns the same leased items first, not new ones.
    again = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 5}).json()["items"]
    assert {i["sample_id"] for i in again} == {i["sample_id"] for i in a}
    rest = alice.post(f"/projects/{pid}/queue/lease", params={"limit": 50}).json()["items"]
    assert len(rest) == 12 - 5
    # Labelled samples leave the queue.
    admin.post(f"/projects/{pid}/labels", json=[{"sample_id": i["sample_id"], "label": "0"} for i in a])
    assert {i["sample_id"] for i in admin.post(f"/projects/{pid}/queue/lease").json()["items"]} == set()


def test_expired_leases_return_to_the_queue(admin, digits_project, settings):
    from sqlalchemy import update

    from app.db import session_scope
    from app.models import Sample
    from app.models.base import utcnow

    pid, _ = _project_with_samples(admin, digits_project, 4)
    alice = admin.new_user("alice")
    admin.post(f"/projects/{pid}/members", json={"username": "alice", "role": "annotator"})
    held = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 4}).json()["items"]
    assert alice.post(f"/projects/{pid}/queue/lease").json()["items"] == []
    with session_scope(settings.database_url) as s:  # the admin walked away an hour ago
        s.execute(update(Sample).values(lease_expires_at=utcnow() - timedelta(hours=1)))
    got = alice.post(f"/projects/{pid}/queue/lease", params={"limit": 10}).json()["items"]
    assert {i["sample_id"] for i in got} == {i["sample_id"] for i in held}


def test_export_holds_exactly_the_labels_given(admin, digits_project):
    pid, samples = _project_with_samples(admin, digits_project, 10)
    given = {sid: cls for sid, cls in samples[:3]}
    admin.post(f"/projects/{pid}/labels", json=[{"sample_id": s, "label": c} for s, c in given.items()])
    r = admin.get(f"/projects/{pid}/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {int(x["sample_id"]): x["label"] for x in rows} == given
    assert all(x["annotator"] == "admin" and x["filename"].endswith(".png") for x in rows)
    lines = admin.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text.strip().splitlines()
    assert {json.loads(x)["sample_id"]: json.loads(x)["label"] for x in lines} == given
    assert admin.get(f"/projects/{pid}/export", params={"format": "xml"}).status_code == 422
