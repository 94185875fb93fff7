"""GET /projects/{pid}/labels/mine: the caller's own recent labels (the label view's strip and its undo
after a reload), on SQLite and PostgreSQL (the ``admin`` fixture runs on both through ``db_url``)."""

from __future__ import annotations

from tests.conftest import digits_pngs, upload


def _samples(admin, pid: int, n: int) -> list[int]:
    assert upload(admin, pid, [(name, data) for name, data, _ in digits_pngs(n)]).status_code == 201
    return [s["id"] for s in admin.get(f"/projects/{pid}/samples", params={"limit": 1000}).json()["items"]]


def _label(api, pid: int, sid: int, label: str) -> int:
    r = api.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": label})
    assert r.status_code == 201, r.text
    return r.json()["items"][0]["id"]


def test_lists_only_the_callers_labels_newest_first_with_undone_marked(admin, digits_project):
    pid = digits_project["id"]
    s = _samples(admin, pid, 8)
    alice = admin.new_user("alice")
    admin.post(f"/projects/{pid}/members", json={"username": "alice", "role": "annotator"})
    mine = [_label(alice, pid, s[i], str(i)) for i in range(4)]
    theirs = _label(admin, pid, s[5], "5")
    relabel = _label(alice, pid, s[0], "9")  # a correction: a new revision of her own
    assert alice.delete(f"/labels/{relabel}").status_code == 200  # her newest: undone, s[0] is "0" again

    r = alice.get(f"/projects/{pid}/labels/mine")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["label_id"] for i in items] == [relabel, *reversed(mine)]  # newest first, only hers
    assert theirs not in {i["label_id"] for i in items}
    assert [i["live"] for i in items] == [False, True, True, True, True]
    first = items[0]
    assert (first["sample_id"], first["label"], first["current_label"]) == (s[0], "9", "0")
    assert first["thumbnail_url"] == f"/api/v1/samples/{s[0]}/thumbnail"
    assert alice.get(first["thumbnail_url"].removeprefix("/api/v1")).status_code == 200
    assert first["width"] == 8 and first["filename"].endswith(".png") and first["created_at"]
    # Bounded by limit, still newest first.
    assert [i["label_id"] for i in alice.get(f"/projects/{pid}/labels/mine", params={"limit": 2}).json()["items"]] \
        == [relabel, mine[3]]
    assert [i["label_id"] for i in admin.get(f"/projects/{pid}/labels/mine").json()["items"]] == [theirs]


def test_bad_limit_and_foreign_project_are_refused(admin, digits_project):
    pid = digits_project["id"]
    for bad in (0, -1, 10_000, "x"):
        r = admin.get(f"/projects/{pid}/labels/mine", params={"limit": bad})
        assert r.status_code == 422 and "limit" in r.text, (bad, r.text)
    bob = admin.new_user("bob")
    assert bob.get(f"/projects/{pid}/labels/mine").status_code == 404  # not a member: as if absent
    assert admin.get(f"/projects/{pid}/labels/mine").json() == {"items": []}
