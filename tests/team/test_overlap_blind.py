"""A blind second opinion everywhere (issue 17, item 3): while a sample's first label awaits a second
opinion, an annotator who may give it sees that label nowhere (the sample browser, its filters, the
sample's page, its history), as the label view already served it; the first labeller, reviewers and
admins see everything, and the annotator's own label ends the blindness."""

from __future__ import annotations

import io
import json
import zipfile

from tests.team.test_overlap import _label, _lease, _team


def _page(api, pid: int, **params) -> list[dict]:
    r = api.get(f"/projects/{pid}/samples", params={"limit": 100, **params})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_an_annotator_owing_a_second_opinion_sees_the_first_label_nowhere(admin):
    pid, u = _team(admin, 4)
    rev = admin.new_user("rev")
    admin.post(f"/projects/{pid}/members", json={"username": "rev", "role": "reviewer"})
    ids = sorted(i["sample_id"] for i in _lease(u["ann"], pid))
    first = dict(zip(ids, ["a", "b", "a", "c"], strict=True))
    _label(u["ann"], pid, first.items())

    for who in ("bea", "cy"):
        api = u[who]
        items = _page(api, pid)
        assert {i["id"] for i in items} == set(ids)
        assert all(i["label"] is None and i["blind"] for i in items), items
        assert all(i["status"] == "labelled" for i in items)  # that it was labelled is no secret; what, is
        # A filter on the label would tell it: the samples awaiting their opinion are left out.
        assert _page(api, pid, label="a") == [] and _page(api, pid, label="b") == []
        for sid in ids:
            d = api.get(f"/samples/{sid}").json()
            assert d["label"] is None and d["blind"] and d["history"] == [], d
            assert api.get(f"/samples/{sid}/labels").json() == []
        # Nor as an example of its class beside the guidelines (newest labelled ones, before a model).
        assert all(xs == [] for xs in api.get(f"/projects/{pid}/guidelines").json()["examples"].values())
        # Nor in the export, nor in the activity log's events.
        r = api.get(f"/projects/{pid}/export", params={"format": "jsonl"})
        assert r.status_code == 200 and r.text.strip() == "", r.text
        # In no format: the ImageFolder zip's folders are the labels, COCO's annotations and CSV's rows too.
        zipped = api.get(f"/projects/{pid}/export", params={"format": "imagefolder"}).content
        with zipfile.ZipFile(io.BytesIO(zipped)) as z:
            assert z.namelist() == [], z.namelist()
        assert api.get(f"/projects/{pid}/export", params={"format": "coco"}).json()["annotations"] == []
        assert api.get(f"/projects/{pid}/export", params={"format": "csv"}).text.strip().count("\n") == 0
        events = [e for e in api.get(f"/projects/{pid}/activity").json()["events"] if e.get("sample_id") in first]
        assert len(events) == 4 and all(e["label"] is None for e in events), events

    # The first labeller, a reviewer and an admin see the labels as before.
    for api in (u["ann"], rev, admin):
        assert {i["id"]: i["label"] for i in _page(api, pid)} == first
        assert not any(i["blind"] for i in _page(api, pid))
        assert sorted(i["id"] for i in _page(api, pid, label="a")) == [s for s in ids if first[s] == "a"]
        d = api.get(f"/samples/{ids[0]}").json()
        assert d["label"] == "a" and [r["label"] for r in d["history"]] == ["a"] and not d["blind"]
        body = api.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text
        exported = [json.loads(x) for x in body.splitlines() if x]
        assert {x["sample_id"]: x["label"] for x in exported} == first
        examples = api.get(f"/projects/{pid}/guidelines").json()["examples"]
        assert {c: sorted(e["sample_id"] for e in xs) for c, xs in examples.items()} == {
            c: sorted(s for s in ids if first[s] == c) for c in ("a", "b", "c")}

    # bea gives her opinion on the first sample: from then on she, and everyone, sees both labels there.
    _label(u["bea"], pid, [(ids[0], "b")])
    for api in (u["bea"], u["cy"]):
        d = api.get(f"/samples/{ids[0]}").json()
        assert d["label"] == "a" and not d["blind"]
        assert sorted(r["label"] for r in d["history"]) == ["a", "b"]
        assert [i["id"] for i in _page(api, pid, label="a")] == [ids[0]]
    # The others still await it.
    assert u["bea"].get(f"/samples/{ids[1]}").json()["label"] is None
