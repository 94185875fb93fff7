"""GET /projects/{pid}/samples as the sample browser (issue 17, item 1): every filter, every order,
keyset pages that visit each sample once, 422s that name the parameter, and GET /samples/{sid} with its
history. On SQLite and PostgreSQL (the ``admin`` fixture runs on both through ``db_url``).

The model's view of the samples is written by the train job's own writer (``store_version``) with
chosen confidences and scores, so each order and range has a known answer."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from tests.conftest import digits_pngs, imagefolder_zip, upload

N_LOOSE, N_FOLDER = 24, 6


def _all(api, pid: int, limit: int = 7, **params) -> list[dict]:
    """Every page of a listing, following next_cursor; checks each page's size."""
    out, cursor = [], None
    for _ in range(100):
        q = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        r = api.get(f"/projects/{pid}/samples", params=q)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= limit
        out += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
        assert len(body["items"]) == limit  # a page before the last is full
    raise AssertionError("the cursor never ended")


def _store_model(settings, pid: int, ids: list[int]) -> tuple[dict[int, tuple[str, float]], dict[int, float]]:
    """A model version of known suggestions: sample i suggests class i % 10 at a confidence that rises
    with i (two samples share one, so the keyset meets a tie), and a score that falls with i."""
    from app.repos import predictions as predictions_repo

    n = len(ids)
    proba = np.full((n, 10), 0.0, dtype=np.float64)
    conf = [round(0.2 + 0.025 * i, 3) for i in range(n)]
    conf[5] = conf[4]  # a tie
    for i in range(n):
        proba[i, :] = (1 - conf[i]) / 9
        proba[i, i % 10] = conf[i]
    scores = np.array([1.0 - 0.01 * i for i in range(n)])
    predictions_repo.store_version(
        settings.database_url,
        predictions_repo.NewModelVersion(project_id=pid, job_id=None, estimator="logistic", strategy="margin",
                                         label_count=0, embedding_version_id=None, label_revisions=0),  # type: ignore[arg-type]
        predictions_repo.Predictions(sample_ids=np.array(ids, dtype=np.int64), classes=[str(c) for c in range(10)],
                                     proba=proba, scores=scores, priority=scores.copy(), reasons=[None] * n))
    return ({sid: (str(i % 10), conf[i]) for i, sid in enumerate(ids)},
            {sid: float(scores[i]) for i, sid in enumerate(ids)})


@pytest.fixture
def browsed(admin, digits_project, settings):
    """A project of 30 digits (6 of them from ImageFolder sub-folders), some labelled, one corrected, one
    with a disagreeing second opinion, and a model version."""
    pid = digits_project["id"]
    pngs = digits_pngs(N_LOOSE + N_FOLDER)
    assert upload(admin, pid, [(n, d) for n, d, _ in pngs[:N_LOOSE]]).status_code == 201
    assert upload(admin, pid, [("folders.zip", imagefolder_zip(pngs[N_LOOSE:]))]).status_code == 201
    items = _all(admin, pid, limit=100)
    ids = [s["id"] for s in items]
    suggestions, scores = _store_model(settings, pid, ids)
    for sid, label in [(ids[0], "0"), (ids[1], "7"), (ids[2], "2"), (ids[3], "3")]:
        assert admin.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": label}).status_code == 201
    # ids[3]: corrected by the admin (3 -> 8); ids[2]: a second opinion of another annotator, who disagrees.
    assert admin.post(f"/projects/{pid}/labels", json={"sample_id": ids[3], "label": "8"}).status_code == 201
    admin.new_user("bea")
    admin.post(f"/projects/{pid}/members", json={"username": "bea", "role": "annotator"})
    bea = admin.login_as("bea", "user-password-1")
    assert bea.post(f"/projects/{pid}/labels", json={"sample_id": ids[2], "label": "5"}).status_code == 201
    return {"pid": pid, "ids": ids, "items": {s["id"]: s for s in items}, "suggestions": suggestions,
            "scores": scores, "bea": bea, "names": {s["id"]: s["filename"] for s in items}}


def test_created_order_pages_once_through_every_sample_with_suggestions(admin, browsed):
    pid, ids = browsed["pid"], browsed["ids"]
    got = _all(admin, pid, limit=7)
    assert [s["id"] for s in got] == sorted(ids)
    for s in got:
        label, conf = browsed["suggestions"][s["id"]]
        assert s["suggestion"] == {"label": label, "confidence": pytest.approx(conf)}
        assert s["score"] == pytest.approx(browsed["scores"][s["id"]])
    assert [s["id"] for s in _all(admin, pid, limit=4, sort="-created")] == sorted(ids, reverse=True)
    # A cursor of the pages before sorts existed (base64 of the last id) still means "after this id".
    old = base64.urlsafe_b64encode(str(ids[9]).encode()).decode()
    r = admin.get(f"/projects/{pid}/samples", params={"cursor": old, "limit": 3})
    assert [s["id"] for s in r.json()["items"]] == sorted(ids)[10:13]


def test_orders_by_confidence_and_score_keyset_across_ties(admin, browsed):
    pid, sugg, scores = browsed["pid"], browsed["suggestions"], browsed["scores"]
    by_conf = sorted(sugg, key=lambda sid: (sugg[sid][1], sid))
    assert [s["id"] for s in _all(admin, pid, limit=5, sort="confidence")] == by_conf
    assert [s["id"] for s in _all(admin, pid, limit=5, sort="-confidence")] == by_conf[::-1]
    by_score = sorted(scores, key=lambda sid: (-scores[sid], -sid))
    assert [s["id"] for s in _all(admin, pid, limit=6, sort="score")] == by_score
    # A cursor belongs to its order.
    cursor = admin.get(f"/projects/{pid}/samples", params={"sort": "confidence", "limit": 2}).json()["next_cursor"]
    r = admin.get(f"/projects/{pid}/samples", params={"sort": "score", "cursor": cursor})
    assert r.status_code == 422 and "cursor" in r.text and "sort=confidence" in r.text


def test_each_filter(admin, browsed):
    pid, ids, sugg = browsed["pid"], browsed["ids"], browsed["suggestions"]

    def listed(**params) -> list[int]:
        return [s["id"] for s in _all(admin, pid, limit=5, **params)]

    assert listed(status="labelled") == sorted(ids[:4])
    assert listed(status="unlabelled") == sorted(ids[4:])
    assert listed(label="8") == [ids[3]]  # the correction is the label now
    assert listed(label="3") == []
    assert listed(suggested="4") == sorted(sid for sid in ids if sugg[sid][0] == "4")
    assert listed(min_confidence=0.5, max_confidence=0.6) == sorted(sid for sid in ids if 0.5 <= sugg[sid][1] <= 0.6)
    assert listed(min_confidence=0.5, max_confidence=0.6, sort="-confidence") == sorted(
        (sid for sid in ids if 0.5 <= sugg[sid][1] <= 0.6), key=lambda sid: (-sugg[sid][1], -sid))
    name = browsed["names"][ids[11]]
    assert listed(q=name.upper()[-8:]) == [ids[11]]  # case does not matter
    assert listed(q="%") == [] and listed(q="_") == [s for s in sorted(ids) if "_" in browsed["names"][s]]
    folder = browsed["items"][ids[-1]]["source_folder"]
    assert folder is not None
    assert listed(folder=folder) == sorted(s for s in ids if browsed["items"][s]["source_folder"] == folder)
    audit = sorted(s for s in ids if browsed["items"][s]["is_audit"])
    assert listed(audit=True) == audit and listed(audit=False) == sorted(set(ids) - set(audit))
    # ids[1] labelled 7 against a suggestion of 1; ids[3] is 8 against 3; ids[0] and ids[2] agree.
    assert listed(disagreement="model") == sorted([ids[1], ids[3]])
    assert listed(disagreement="annotators") == [ids[2]]
    assert listed(status="in_review") == [ids[2]]
    page = admin.get(f"/projects/{pid}/samples", params={"status": "in_review"}).json()["items"]
    assert page[0]["in_review"] is True
    # Filters combine.
    assert listed(status="labelled", suggested="7") == []
    assert listed(status="labelled", suggested="1") == [ids[1]]


def test_bad_filter_values_answer_422_naming_the_parameter(admin, browsed):
    pid = browsed["pid"]
    for params, named in [
        ({"status": "done"}, "status"), ({"sort": "name"}, "sort"), ({"min_confidence": 1.5}, "min_confidence"),
        ({"max_confidence": "high"}, "max_confidence"), ({"label": "cat"}, "label"),
        ({"suggested": "cat"}, "suggested"),
        ({"min_confidence": 0.8, "max_confidence": 0.2}, "min_confidence"), ({"disagreement": "all"}, "disagreement"),
        ({"audit": "maybe"}, "audit"), ({"cursor": "not-a-cursor"}, "cursor"), ({"q": ""}, "q"),
        ({"cursor": base64.urlsafe_b64encode(json.dumps({"o": "created", "k": ["x"]}).encode()).decode()}, "cursor"),
        ({"sort": "similarity"}, "similar_to"), ({"similar_to": browsed["ids"][0], "sort": "score"}, "sort"),
        ({"similar_to": browsed["ids"][0]}, "similar_to"),  # no embeddings yet
        ({"similar_to": 10**9}, "similar_to"),
    ]:
        r = admin.get(f"/projects/{pid}/samples", params=params)
        assert r.status_code == 422, (params, r.text)
        assert named in r.text, (params, r.text)


def test_unsure_lists_the_samples_marked_unsure(admin, browsed):
    pid, ids = browsed["pid"], browsed["ids"]
    assert admin.get(f"/projects/{pid}/samples", params={"status": "unsure"}).json()["items"] == []
    r = browsed["bea"].post(f"/samples/{ids[6]}/unsure", json={"guess": "6"})
    assert r.status_code == 201, r.text
    got = _all(admin, pid, status="unsure")
    assert [(s["id"], s["status"], s["in_review"]) for s in got] == [(ids[6], "unsure", True)]
    assert ids[6] not in {s["id"] for s in _all(admin, pid, status="unlabelled")}
    assert ids[6] in {s["id"] for s in _all(admin, pid, status="in_review")}
    history = admin.get(f"/samples/{ids[6]}").json()["history"]
    assert [(h["action"], h["username"]) for h in history] == [("unsure", "bea")]


def test_similar_to_orders_by_cosine_similarity_from_the_stored_embeddings(admin, browsed, settings):
    from app import embedding_store
    from app.db import session_scope
    from app.models import EmbeddingVersion, Project

    pid, ids = browsed["pid"], sorted(browsed["ids"])
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(ids), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    file_key, ids_key = embedding_store.write(settings.media_path, pid, "browser-test", np.array(ids), vectors)
    with session_scope(settings.database_url) as s:
        ev = EmbeddingVersion(project_id=pid, kind="pixels", dim=8, dtype="float32", count=len(ids),
                              file_key=file_key, ids_key=ids_key)
        s.add(ev)
        s.flush()
        s.get(Project, pid).current_embedding_version_id = ev.id
    sims = vectors @ vectors[0]
    expected = [ids[i] for i in np.argsort(-sims, kind="stable") if i != 0]
    got = _all(admin, pid, limit=4, similar_to=ids[0])
    assert [s["id"] for s in got] == expected
    assert [s["similarity"] for s in got] == pytest.approx(sorted(sims[1:].tolist(), reverse=True), abs=1e-5)
    # With a filter: the same order, fewer samples.
    unl = _all(admin, pid, limit=3, similar_to=ids[0], status="unlabelled")
    assert [s["id"] for s in unl] == [i for i in expected if i in set(browsed["ids"][4:])]


def test_sample_detail_has_the_suggestion_and_every_revision(admin, browsed):
    pid, ids = browsed["pid"], browsed["ids"]
    r = admin.get(f"/samples/{ids[3]}")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["label"] == "8" and d["suggestion"]["label"] == browsed["suggestions"][ids[3]][0]
    assert [(h["label"], h["username"], h["action"]) for h in d["history"]] == [
        ("3", "admin", "set"), ("8", "admin", "set")]
    shown = browsed["suggestions"][ids[3]]
    assert all(h["suggested_label"] == shown[0] and h["suggested_confidence"] == pytest.approx(shown[1])
               and h["model_version"] for h in d["history"])
    assert all(h["created_at"] for h in d["history"])
    second = admin.get(f"/samples/{ids[2]}").json()
    assert [(h["label"], h["username"], h["opinion"]) for h in second["history"]] == [
        ("2", "admin", "primary"), ("5", "bea", "second")]
    assert second["in_review"] is True
    outsider = admin.new_user("olaf")
    assert outsider.get(f"/samples/{ids[3]}").status_code == 404
    assert outsider.get(f"/projects/{pid}/samples").status_code == 404
