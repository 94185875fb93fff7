"""Notes and doubt (issue 17 item 4): an unsure mark sends a sample to review and keeps it out of the
training data and the figures until a reviewer decides; comments; guidelines rendered safely. On SQLite
and PostgreSQL (``admin`` runs on both through ``db_url``)."""

from __future__ import annotations

import csv
import io

from tests.api.test_recent_labels import _label, _samples
from tests.conftest import digits_pngs


def _team(admin, pid: int):
    alice, bob = admin.new_user("alice"), admin.new_user("bob")
    admin.post(f"/projects/{pid}/members", json={"username": "alice", "role": "annotator"})
    admin.post(f"/projects/{pid}/members", json={"username": "bob", "role": "reviewer"})
    return alice, bob


def _training_labels(settings, pid: int) -> dict[int, str]:
    from app.repos.predictions import training_pool  # what the train job fits on

    return training_pool(settings.database_url, pid).labels


def _exported(admin, pid: int) -> set[int]:
    r = admin.get(f"/projects/{pid}/export", params={"format": "csv"})
    assert r.status_code == 200, r.text
    return {int(row["sample_id"]) for row in csv.DictReader(io.StringIO(r.text))}


def test_unsure_goes_to_review_and_teaches_nothing_until_decided(admin, digits_project, settings):
    pid = digits_project["id"]
    s = _samples(admin, pid, 8)
    alice, bob = _team(admin, pid)
    for i in range(3):
        _label(alice, pid, s[i], str(i))
    assert admin.get(f"/projects/{pid}/metrics").json()["labelled_count"] == 3

    # A labelled sample marked unsure (her label held back), and one she never labelled.
    r = alice.post(f"/samples/{s[1]}/unsure", json={"guess": "7", "note": "could be a 7 with a short bar"})
    assert r.status_code == 201, r.text
    mark1 = r.json()
    assert mark1["status"] == "unsure" and mark1["created"] and mark1["username"] == "alice"
    r = alice.post(f"/samples/{s[3]}/unsure", json={})
    assert r.status_code == 201, r.text
    mark3 = r.json()
    again = alice.post(f"/samples/{s[3]}/unsure", json={})  # a retry: the same open mark
    assert again.status_code == 200 and again.json()["label_id"] == mark3["label_id"] and not again.json()["created"]

    # Not a label: out of the training data, the counts, the class balance and the export.
    assert alice.get(f"/samples/{s[1]}").json()["status"] == "unsure"
    assert alice.get(f"/samples/{s[1]}").json()["label"] is None
    m = admin.get(f"/projects/{pid}/metrics").json()
    assert m["labelled_count"] == 2 and m["unsure_count"] == 2 and m["human_label_count"] == 2
    assert m["class_balance"]["1"] == 0
    assert set(_training_labels(settings, pid)) == {s[0], s[2]}
    assert _exported(admin, pid) == {s[0], s[2]}
    # The sample browser's filter finds them.
    found = admin.get(f"/projects/{pid}/samples", params={"status": "unsure"}).json()["items"]
    assert {x["id"] for x in found} == {s[1], s[3]}
    # ... and out of the queue: nobody is served a sample in doubt.
    leased = admin.post(f"/projects/{pid}/queue/lease", json={"limit": 50})
    assert leased.status_code in (200, 201), leased.text
    assert not {s[1], s[3]} & {i["sample_id"] for i in leased.json()["items"]}

    # No label is lost: the history keeps her "1" and the mark, who and when.
    hist = alice.get(f"/samples/{s[1]}/labels").json()
    assert [(h["action"], h["label"], h["username"]) for h in hist] == [("set", "1", "alice"),
                                                                         ("unsure", None, "alice")]
    assert hist[1]["id"] == mark1["label_id"] and hist[1]["created_at"]

    # In the review list, with who, the guess, the label held back and the note.
    reviews = {r["sample_id"]: r for r in bob.get(f"/projects/{pid}/reviews").json()}
    assert reviews[s[1]]["reason"] == "unsure" and reviews[s[3]]["reason"] == "unsure"
    assert reviews[s[1]]["detail"].items() >= {"by": "alice", "guess": "7", "previous": "1"}.items()
    assert [c["text"] for c in reviews[s[1]]["comments"]] == ["could be a 7 with a short bar"]

    # Only a reviewer's decision labels it: a label from the label route is refused, naming why.
    r = alice.post(f"/projects/{pid}/labels", json={"sample_id": s[3], "label": "3"})
    assert r.status_code == 409 and "unsure" in r.text and str(s[3]) in r.text
    assert alice.post(f"/reviews/{reviews[s[1]]['id']}/resolve", json={"label": "7"}).status_code == 403
    r = bob.post(f"/reviews/{reviews[s[1]]['id']}/resolve", json={"label": "7"})
    assert r.status_code == 200, r.text
    r_decided = r.json()["label_id"]
    assert alice.get(f"/samples/{s[1]}").json().items() >= {"status": "labelled", "label": "7"}.items()
    assert admin.get(f"/projects/{pid}/metrics").json()["labelled_count"] == 3
    assert _training_labels(settings, pid)[s[1]] == "7"
    # A decided mark stays: its undo is refused.
    r = alice.delete(f"/labels/{mark1['label_id']}")
    assert r.status_code == 422 and "decided" in r.text
    # An admin taking the decision back: the doubt is back, and its review open again.
    assert admin.delete(f"/labels/{r_decided}").status_code == 200
    assert admin.get(f"/samples/{s[1]}").json()["status"] == "unsure"
    assert s[1] not in _training_labels(settings, pid)
    again = {x["sample_id"]: x for x in bob.get(f"/projects/{pid}/reviews").json()}
    assert again[s[1]]["id"] == reviews[s[1]]["id"]
    assert bob.post(f"/reviews/{reviews[s[1]]['id']}/resolve", json={"label": "7"}).status_code == 200

    # Her own open mark she can take back: the sample is as before (unlabelled), the review withdrawn.
    assert bob.delete(f"/labels/{mark3['label_id']}").status_code == 403  # not his mark
    r = alice.delete(f"/labels/{mark3['label_id']}")
    assert r.status_code == 200, r.text
    assert alice.get(f"/samples/{s[3]}").json()["status"] == "unlabelled"
    assert s[3] not in {x["sample_id"] for x in bob.get(f"/projects/{pid}/reviews").json()}
    assert s[3] in {x["sample_id"] for x in bob.get(f"/projects/{pid}/reviews", params={"status": "withdrawn"}).json()}
    assert admin.get(f"/projects/{pid}/metrics").json()["unsure_count"] == 0
    _label(alice, pid, s[3], "3")  # labelled as any other now


def test_undoing_a_label_under_a_mark_keeps_the_doubt(admin, digits_project, settings):
    """The mark holds whatever is under it: an admin undoing the label it held back leaves the sample
    unsure (still in review, still not trained on)."""
    pid = digits_project["id"]
    s = _samples(admin, pid, 3)
    alice, _ = _team(admin, pid)
    lid = _label(alice, pid, s[0], "0")
    assert alice.post(f"/samples/{s[0]}/unsure", json={}).status_code == 201
    assert admin.delete(f"/labels/{lid}").status_code == 200
    assert admin.get(f"/samples/{s[0]}").json()["status"] == "unsure"
    assert s[0] not in _training_labels(settings, pid)
    assert admin.get(f"/projects/{pid}/metrics").json()["labelled_count"] == 0


def test_unsure_bad_requests(admin, digits_project):
    pid = digits_project["id"]
    s = _samples(admin, pid, 2)
    viewer, outsider = admin.new_user("vera"), admin.new_user("otto")
    admin.post(f"/projects/{pid}/members", json={"username": "vera", "role": "viewer"})
    r = admin.post(f"/samples/{s[0]}/unsure", json={"guess": "cat"})
    assert r.status_code == 422 and "cat" in r.text and "not a class" in r.text
    assert viewer.post(f"/samples/{s[0]}/unsure", json={}).status_code == 403
    assert outsider.post(f"/samples/{s[0]}/unsure", json={}).status_code == 404
    assert admin.post("/samples/999999/unsure", json={}).status_code == 404
    assert admin.get(f"/samples/{s[0]}").json()["status"] == "unlabelled"


def test_comments(admin, digits_project):
    pid = digits_project["id"]
    s = _samples(admin, pid, 2)
    alice, bob = _team(admin, pid)
    viewer, outsider = admin.new_user("vera"), admin.new_user("otto")
    admin.post(f"/projects/{pid}/members", json={"username": "vera", "role": "viewer"})
    r = alice.post(f"/samples/{s[0]}/comments", json={"text": "  the stroke at the top is a scanner artefact  "})
    assert r.status_code == 201, r.text
    assert r.json()["text"] == "the stroke at the top is a scanner artefact" and r.json()["username"] == "alice"
    assert bob.post(f"/samples/{s[0]}/comments", json={"text": "<b>agreed</b>"}).status_code == 201
    got = viewer.get(f"/samples/{s[0]}/comments")
    assert got.status_code == 200
    assert [(c["username"], c["text"]) for c in got.json()] == [
        ("alice", "the stroke at the top is a scanner artefact"), ("bob", "<b>agreed</b>")]
    assert alice.get(f"/samples/{s[1]}/comments").json() == []
    # The limit, named.
    r = alice.post(f"/samples/{s[0]}/comments", json={"text": "x" * 2001})
    assert r.status_code == 422 and "2000" in r.text and "text" in r.text
    assert alice.post(f"/samples/{s[0]}/comments", json={"text": "x" * 2000}).status_code == 201
    assert alice.post(f"/samples/{s[0]}/comments", json={"text": "   "}).status_code == 422
    assert viewer.post(f"/samples/{s[0]}/comments", json={"text": "hi"}).status_code == 403
    assert outsider.get(f"/samples/{s[0]}/comments").status_code == 404
    assert outsider.post(f"/samples/{s[0]}/comments", json={"text": "hi"}).status_code == 404


GUIDE = """# Digits

A **7** may have a bar; a 1 never does.

<script>alert("owned")</script>
<img src=x onerror="alert(1)">

[bad link](javascript:alert(1)) [data](data:text/html;base64,PHNjcmlwdD4=) [docs](https://example.org/guide)

![a clear seven](sample:{sid})
"""


def test_guidelines_render_safely_with_examples(admin, digits_project):
    pid = digits_project["id"]
    s = _samples(admin, pid, 6)
    alice, _ = _team(admin, pid)
    empty = alice.get(f"/projects/{pid}/guidelines").json()
    assert empty["markdown"] == "" and empty["html"] == "" and empty["examples"]["7"] == []
    _label(alice, pid, s[0], "7")
    _label(alice, pid, s[1], "7")
    _label(alice, pid, s[2], "1")

    r = admin.put(f"/projects/{pid}/guidelines", json={"markdown": GUIDE.format(sid=s[0]), "examples": {"7": [s[1]]}})
    assert r.status_code == 200, r.text
    g = alice.get(f"/projects/{pid}/guidelines").json()
    html = g["html"]
    assert "<h1>Digits</h1>" in html and "<strong>7</strong>" in html
    assert "<script" not in html and "<img src=x" not in html and "&lt;script&gt;" in html
    assert "javascript:" not in html.replace("[bad link](javascript:alert(1))", "")
    assert 'href="javascript' not in html and 'href="data' not in html
    assert '<a href="https://example.org/guide"' in html and 'rel="noopener noreferrer"' in html
    assert f'src="/api/v1/samples/{s[0]}/image"' in html
    assert g["updated_by"] == "admin" and g["updated_at"]
    # Chosen by the admin for 7; for 1, the labelled samples of that class (no model yet: newest first).
    assert [(e["sample_id"], e["chosen"]) for e in g["examples"]["7"]] == [(s[1], True)]
    assert [(e["sample_id"], e["chosen"]) for e in g["examples"]["1"]] == [(s[2], False)]
    assert g["examples"]["7"][0]["thumbnail_url"] == f"/api/v1/samples/{s[1]}/thumbnail"


def test_guidelines_bad_requests(admin, digits_project):
    pid = digits_project["id"]
    s = _samples(admin, pid, 3)
    alice, _ = _team(admin, pid)
    _label(alice, pid, s[0], "7")
    assert alice.put(f"/projects/{pid}/guidelines", json={"markdown": "hi"}).status_code == 403
    for examples, words in (({"cat": [s[0]]}, "cat"), ({"1": [s[0]]}, "not labelled 1"),
                            ({"7": [s[1]]}, "not labelled 7"), ({"7": [999999]}, "not in the project")):
        r = admin.put(f"/projects/{pid}/guidelines", json={"markdown": "", "examples": examples})
        assert r.status_code == 422 and words in r.text, (examples, r.text)
    r = admin.put(f"/projects/{pid}/guidelines", json={"markdown": "![x](sample:999999)"})
    assert r.status_code == 422 and "999999" in r.text
    r = admin.put(f"/projects/{pid}/guidelines", json={"markdown": "x" * 100_001})
    assert r.status_code == 422 and "markdown" in r.text
    assert admin.get(f"/projects/{pid}/guidelines").json()["markdown"] == ""


def test_guideline_images_upload_and_show(admin, digits_project):
    pid = digits_project["id"]
    _samples(admin, pid, 1)
    alice, _ = _team(admin, pid)
    outsider = admin.new_user("otto")
    name, png, _ = digits_pngs(1, offset=5)[0]
    files = [("files", ("bar.png", png, "image/png"))]
    assert alice.post(f"/projects/{pid}/guidelines/images", files=files).status_code == 403
    r = admin.post(f"/projects/{pid}/guidelines/images", files=files)
    assert r.status_code == 201, r.text
    item = r.json()["items"][0]
    assert item["markdown"] == f"![bar.png](image:{item['name']})" and item["name"].endswith(".png")
    got = alice.get(item["url"].removeprefix("/api/v1"))
    assert got.status_code == 200 and got.content == png and got.headers["content-type"] == "image/png"
    assert outsider.get(item["url"].removeprefix("/api/v1")).status_code == 404
    assert alice.get(f"/projects/{pid}/guidelines/images/{'0' * 64}.png").status_code == 404
    assert alice.get(f"/projects/{pid}/guidelines/images/..%2F..%2Fsecret").status_code == 404
    # Not an image: refused, naming the file, nothing stored.
    r = admin.post(f"/projects/{pid}/guidelines/images", files=[("files", ("notes.txt", b"hello", "text/plain"))])
    assert r.status_code == 422 and "notes.txt" in r.text
    # Shown by the guidelines.
    assert admin.put(f"/projects/{pid}/guidelines", json={"markdown": item["markdown"]}).status_code == 200
    html = alice.get(f"/projects/{pid}/guidelines").json()["html"]
    assert f'<img src="{item["url"]}" alt="bar.png"' in html
