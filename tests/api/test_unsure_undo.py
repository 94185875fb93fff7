"""An unsure mark is where the label view's undo resumes after a reload (issue 17 item 4): the caller's
recent list (``GET /projects/{pid}/labels/mine``) has their marks beside their labels, live while the mark
can be taken back (not undone, its review not decided). SQLite and PostgreSQL."""

from __future__ import annotations

from tests.api.test_notes_and_doubt import _team
from tests.api.test_recent_labels import _label, _samples


def _mine(api, pid: int) -> list[tuple[int, str, bool]]:
    r = api.get(f"/projects/{pid}/labels/mine")
    assert r.status_code == 200, r.text
    return [(i["sample_id"], i["action"], i["live"]) for i in r.json()["items"]]


def test_an_unsure_mark_is_in_the_recent_list_live_until_undone_or_decided(admin, digits_project):
    pid = digits_project["id"]
    s = _samples(admin, pid, 4)
    alice, bob = _team(admin, pid)
    _label(alice, pid, s[0], "0")
    mark = alice.post(f"/samples/{s[1]}/unsure", json={}).json()
    assert _mine(alice, pid) == [(s[1], "unsure", True), (s[0], "set", True)]
    # The newest live one is the mark: what Backspace takes back after a reload, before the label.
    assert alice.delete(f"/labels/{mark['label_id']}").status_code == 200
    assert _mine(alice, pid) == [(s[1], "unsure", False), (s[0], "set", True)]
    assert alice.get(f"/samples/{s[1]}").json()["status"] == "unlabelled"

    # A mark a reviewer decided can no longer be taken back: not live.
    again = alice.post(f"/samples/{s[2]}/unsure", json={}).json()
    review = next(r for r in bob.get(f"/projects/{pid}/reviews").json() if r["sample_id"] == s[2])
    assert bob.post(f"/reviews/{review['id']}/resolve", json={"label": "2"}).status_code == 200
    items = {(i["label_id"]): i for i in alice.get(f"/projects/{pid}/labels/mine").json()["items"]}
    assert items[again["label_id"]]["action"] == "unsure" and not items[again["label_id"]]["live"]
    assert items[again["label_id"]]["label"] is None


def test_the_metrics_count_samples_in_doubt_apart(admin, digits_project):
    pid = digits_project["id"]
    s = _samples(admin, pid, 3)
    alice, _ = _team(admin, pid)
    _label(alice, pid, s[0], "0")
    alice.post(f"/samples/{s[0]}/unsure", json={})
    alice.post(f"/samples/{s[1]}/unsure", json={})
    m = admin.get(f"/projects/{pid}/metrics").json()
    assert (m["labelled_count"], m["unsure_count"]) == (0, 2)
