"""Second opinions never overwrite the first; disagreements go to review; undo; batches."""

from __future__ import annotations

import json
from datetime import datetime

from tests.conftest import digits_pngs, upload


def _setup(admin):
    pid = admin.post("/projects", json={"name": "p", "classes": ["a", "b", "c"],
                                        "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
    upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(6)])
    sids = [s["id"] for s in admin.get(f"/projects/{pid}/samples").json()["items"]]
    users = {}
    for name, role in (("ann", "annotator"), ("bea", "annotator"), ("rex", "reviewer")):
        users[name] = admin.new_user(name)
        admin.post(f"/projects/{pid}/members", json={"username": name, "role": role})
    return pid, sids, users


def test_a_second_opinion_is_kept_and_a_disagreement_goes_to_review(admin):
    pid, sids, u = _setup(admin)
    s = sids[0]
    u["ann"].post(f"/projects/{pid}/labels", json={"sample_id": s, "label": "a"})
    agree = u["bea"].post(f"/projects/{pid}/labels", json={"sample_id": sids[1], "label": "b"})
    assert agree.status_code == 201
    r = u["bea"].post(f"/projects/{pid}/labels", json={"sample_id": s, "label": "b"})
    assert r.status_code == 201 and r.json()["items"][0]["opinion"] == "second"
    assert admin.get(f"/samples/{s}").json()["label"] == "a"  # the first label stands
    reviews = admin.get(f"/projects/{pid}/reviews").json()
    assert len(reviews) == 1 and reviews[0]["reason"] == "annotators_disagree"
    assert sorted((o["username"], o["label"]) for o in reviews[0]["opinions"]) == [("ann", "a"), ("bea", "b")]

    # An annotator may not resolve; a project reviewer may, and the decision becomes the label.
    assert u["ann"].post(f"/reviews/{reviews[0]['id']}/resolve", json={"label": "b"}).status_code == 403
    done = u["rex"].post(f"/reviews/{reviews[0]['id']}/resolve", json={"label": "b"})
    assert done.status_code == 200
    assert admin.get(f"/samples/{s}").json()["label"] == "b"
    assert admin.get(f"/projects/{pid}/reviews").json() == []
    assert u["rex"].post(f"/reviews/{reviews[0]['id']}/resolve", json={"label": "a"}).status_code == 422
    agreement = admin.get(f"/projects/{pid}/metrics").json()["agreement"]
    assert agreement["second_opinions"] == 1 and agreement["open_reviews"] == 0
    # Every revision is in the history, in order.
    assert [h["label"] for h in admin.get(f"/samples/{s}/labels").json()] == ["a", "b", "b"]


def test_an_annotator_undoes_their_last_label_only_and_an_admin_any(admin):
    pid, sids, u = _setup(admin)
    ann = u["ann"]
    first = ann.post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "a"}).json()["items"][0]
    second = ann.post(f"/projects/{pid}/labels", json={"sample_id": sids[1], "label": "b"}).json()["items"][0]
    assert ann.delete(f"/labels/{first['id']}").status_code == 403  # not the newest
    assert ann.delete(f"/labels/{second['id']}").status_code == 200
    assert ann.delete(f"/labels/{first['id']}").status_code == 200  # now it is the newest live one
    bea = u["bea"].post(f"/projects/{pid}/labels", json={"sample_id": sids[2], "label": "c"}).json()["items"][0]
    u["bea"].post(f"/projects/{pid}/labels", json={"sample_id": sids[3], "label": "c"})
    assert admin.delete(f"/labels/{bea['id']}").status_code == 200
    assert [s["status"] for s in admin.get(f"/projects/{pid}/samples").json()["items"][:4]] == [
        "unlabelled", "unlabelled", "unlabelled", "labelled"]


def test_a_batch_is_undone_as_one_action(admin):
    pid, sids, u = _setup(admin)
    body = [{"sample_id": s, "label": "c"} for s in sids[:4]]
    r = u["ann"].post(f"/projects/{pid}/labels", json=body, headers={"X-Label-Batch": "1"})
    batch = r.json()["batch_id"]
    assert batch and admin.get(f"/projects/{pid}").json()["labelled_count"] == 4
    assert u["bea"].delete(f"/label-batches/{batch}").status_code == 403
    undo = u["ann"].delete(f"/label-batches/{batch}")
    assert undo.status_code == 200 and undo.json()["created"] == 4
    assert admin.get(f"/projects/{pid}").json()["labelled_count"] == 0
    assert u["ann"].delete(f"/label-batches/{batch}").status_code == 422


def test_an_undone_second_opinion_no_longer_counts_in_the_agreement_figure(admin):
    """The dashboard's agreement rate counts live second opinions only: an undone one is gone (it
    counted for good before, so a withdrawn opinion kept moving the figure)."""
    pid, sids, u = _setup(admin)
    u["ann"].post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "a"})
    kept = u["bea"].post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "a"}).json()["items"][0]
    u["ann"].post(f"/projects/{pid}/labels", json={"sample_id": sids[1], "label": "b"})
    withdrawn = u["bea"].post(f"/projects/{pid}/labels", json={"sample_id": sids[1], "label": "c"}).json()["items"][0]
    assert kept["opinion"] == withdrawn["opinion"] == "second"
    agreement = admin.get(f"/projects/{pid}/metrics").json()["agreement"]
    assert (agreement["second_opinions"], agreement["agreeing"]) == (2, 1)
    assert u["bea"].delete(f"/labels/{withdrawn['id']}").status_code == 200
    agreement = admin.get(f"/projects/{pid}/metrics").json()["agreement"]
    assert (agreement["second_opinions"], agreement["agreeing"], agreement["rate"]) == (1, 1, 1.0)


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _export(admin, pid):
    r = admin.get(f"/projects/{pid}/export?format=jsonl")
    assert r.status_code == 200, r.text
    return {row["sample_id"]: row for row in map(json.loads, r.text.splitlines())}


def test_the_export_names_who_gave_the_current_label_not_the_newest_revision(admin):
    """The export's annotator, source and time are those of the revision that gives the sample its label
    (the newest live first opinion), not of the newest revision: a second opinion or an undone relabel
    once took the row (annotator blank, the wrong time)."""
    pid, sids, u = _setup(admin)
    first = u["ann"].post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "a"}).json()["items"][0]
    u["bea"].post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "b"})  # a second opinion
    kept = u["ann"].post(f"/projects/{pid}/labels", json={"sample_id": sids[1], "label": "a"}).json()["items"][0]
    relabel = u["ann"].post(f"/projects/{pid}/labels", json={"sample_id": sids[1], "label": "c"}).json()["items"][0]
    assert u["ann"].delete(f"/labels/{relabel['id']}").status_code == 200
    rows = _export(admin, pid)
    assert (rows[sids[0]]["label"], rows[sids[0]]["annotator"]) == ("a", "ann")
    assert _when(rows[sids[0]]["labelled_at"]) == _when(first["created_at"])
    assert (rows[sids[1]]["label"], rows[sids[1]]["annotator"]) == ("a", "ann")
    assert _when(rows[sids[1]]["labelled_at"]) == _when(kept["created_at"])
