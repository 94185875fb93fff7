"""Everything downstream of a text import (issue 19), on SQLite and PostgreSQL: the sample browser
searches the documents' words (an index, migration 0020), snippets for the browsing views, the export
with the text (CSV, JSON Lines, class folders of .txt that import back; COCO refused), the words that
drive a suggestion (GET /samples/{sid}/explanation, from the weights a model version stores), and a
backup round trip that keeps the documents and their word index."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_PASSWORD, Api, fresh_database, make_settings, upload
from tests.text.test_text_import import CLASSES, ag_news

DOCS = [
    ("World", "The prime minister of Canada met the Élysée delegation in Paris on Tuesday."),
    ("Sports", "The Red Sox beat the Yankees 5-3 as Ortiz homered twice in the ninth inning."),
    ("Sports", "Federer wins the tennis final at Wimbledon; the crowd cheered the champion."),
    ("Business", "Oil prices rose to a record as OPEC cut output; shares of airlines fell."),
    ("Sci/Tech", "Microsoft released a security patch for Windows after the worm spread."),
]


def _project(admin: Api, name: str = "news") -> int:
    r = admin.post("/projects", json={"name": name, "kind": "text", "classes": CLASSES,
                                      "settings": {"auto_pretrain": False, "auto_embed": False}})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _import(admin: Api, pid: int, docs=DOCS, labelled: int = 0) -> dict[str, int]:
    body = "\n".join(json.dumps({"id": f"d{i}", "text": t, **({"label": c} if i < labelled else {})})
                     for i, (c, t) in enumerate(docs)).encode()
    r = upload(admin, pid, [("news.jsonl", body)])
    assert r.status_code == 201 and r.json()["created"] == len(docs), r.text
    items = admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"]
    return {s["filename"]: s["id"] for s in items}


def _search(admin: Api, pid: int, q: str, **extra) -> list[int]:
    r = admin.get(f"/projects/{pid}/samples", params={"q": q, "limit": 100, **extra})
    assert r.status_code == 200, r.text
    return [s["id"] for s in r.json()["items"]]


def test_the_sample_browser_searches_the_documents_words(admin):
    pid = _project(admin)
    ids = _import(admin, pid)
    doc = {i: ids[f"d{i}"] for i in range(len(DOCS))}
    assert _search(admin, pid, "yankees") == [doc[1]]  # a word, any case
    assert _search(admin, pid, "the final") == [doc[2]]  # every word ("the" is in four, "final" in one)
    assert sorted(_search(admin, pid, "the")) == sorted(doc[i] for i in (0, 1, 2, 4))
    assert _search(admin, pid, "PARIS") == [doc[0]]  # case folded
    assert _search(admin, pid, "yank") == []  # whole words, not parts
    assert _search(admin, pid, "d1") == []  # words of the documents, not file names (ids)
    assert _search(admin, pid, '"; --') == []  # no word at all: nothing, and no error
    assert _search(admin, pid, "the", status="unlabelled", sort="-created")[0] == doc[4]  # with filters, orders
    # Two pages by the cursor, one document each.
    first = admin.get(f"/projects/{pid}/samples", params={"q": "the", "limit": 1}).json()
    second = admin.get(f"/projects/{pid}/samples", params={"q": "the", "limit": 1,
                                                           "cursor": first["next_cursor"]}).json()
    assert [first["items"][0]["id"], second["items"][0]["id"]] == [doc[0], doc[1]]
    # Another project's documents are never found; an image project keeps its file-name search.
    other = _project(admin, "other")
    _import(admin, other, [("Sports", "Yankees again.")])
    assert _search(admin, pid, "yankees") == [doc[1]]
    img = admin.post("/projects", json={"name": "pictures", "classes": ["a"]}).json()["id"]
    assert _search(admin, img, "yankees") == []


def test_snippets_of_a_page_in_one_request(admin):
    pid = _project(admin)
    ids = sorted(_import(admin, pid).values())
    other = _project(admin, "other")
    foreign = list(_import(admin, other, [("World", "Somewhere else entirely.")]).values())
    r = admin.get(f"/projects/{pid}/snippets", params={"ids": ids + foreign + [10**9], "chars": 20})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["sample_id"] for i in items] == ids  # another project's and a missing id are left out
    assert items[0]["text"] == DOCS[0][1][:20]
    assert admin.get(f"/projects/{pid}/snippets", params={"ids": list(range(1, 202))}).status_code == 422


def test_the_export_carries_the_text_and_its_class_folders_import_back(admin):
    pid = _project(admin)
    _import(admin, pid, labelled=3)
    rows = list(csv.DictReader(io.StringIO(admin.get(f"/projects/{pid}/export", params={"format": "csv"}).text)))
    assert [(r["label"], r["text"]) for r in rows] == [(c, t) for c, t in DOCS[:3]]
    lines = admin.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text.splitlines()
    assert [json.loads(x)["text"] for x in lines] == [t for _, t in DOCS[:3]]
    coco = admin.get(f"/projects/{pid}/export", params={"format": "coco"})
    assert coco.status_code == 422 and "text project" in coco.json()["detail"]
    r = admin.get(f"/projects/{pid}/export", params={"format": "imagefolder"})
    assert r.status_code == 200, r.text
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        files = {n: zf.read(n).decode() for n in zf.namelist()}
    assert sorted((n.split("/")[0], t) for n, t in files.items()) == sorted(DOCS[:3])
    assert all(n.endswith(".txt") for n in files)
    # The metrics count documents as they count images.
    m = admin.get(f"/projects/{pid}/metrics").json()
    assert (m["sample_count"], m["labelled_count"]) == (5, 3)
    assert m["class_balance"] == {"World": 1, "Sports": 2, "Business": 0, "Sci/Tech": 0}
    # The zip is the text import's own layout: it imports back, each folder a label.
    again = _project(admin, "again")
    r = upload(admin, again, [("export.zip", r.content)])
    assert r.status_code == 201 and r.json()["created"] == 3 and r.json()["labelled"] == 3, r.text


def test_the_explanation_marks_the_words_of_the_suggested_class(admin, settings):
    from app import explanation_store
    from app.db import session_scope
    from app.models import ModelVersion, Prediction, Project

    pid = _project(admin)
    ids = _import(admin, pid)
    sid = ids["d1"]  # the Red Sox beat the Yankees
    out = admin.get(f"/samples/{sid}/explanation").json()
    # No model yet.
    assert out == {"sample_id": sid, "model_version": None, "label": None, "terms": [], "method": "ngrams"}
    with session_scope(settings.database_url) as s:
        mv = ModelVersion(project_id=pid, estimator="logistic", strategy="mixed", label_count=0)
        s.add(mv)
        s.flush()
        s.add_all([Prediction(model_version_id=mv.id, sample_id=i, label="Sports", confidence=0.9, score=0.1,
                              priority=0.0) for i in ids.values()])
        s.get(Project, pid).current_model_version_id = mv_id = mv.id
    # The train job writes these (workers/jobs/explain_terms.py); here, a model version's by hand.
    explanation_store.write(settings.media_path, pid, mv_id, CLASSES, [
        [("minister", 1.0)], [("red sox", 2.0), ("yankees", 1.5), ("inning", 1.0), ("red", 0.1)], [], []])
    out = admin.get(f"/samples/{sid}/explanation").json()
    text = DOCS[1][1]
    assert out["label"] == "Sports" and out["model_version"] == mv_id
    assert [t["term"] for t in out["terms"]] == ["red sox", "yankees", "inning", "red"]
    assert [text[a:b] for t in out["terms"] for a, b in t["spans"]] == ["Red Sox", "Yankees", "inning", "Red"]
    world = admin.get(f"/samples/{sid}/explanation", params={"label": "World"}).json()
    assert world["label"] == "World" and world["terms"] == []
    assert admin.get(f"/samples/{sid}/explanation", params={"label": "Cats"}).status_code == 422
    img = admin.post("/projects", json={"name": "pictures", "classes": ["a"]}).json()["id"]
    from tests.conftest import digits_pngs

    upload(admin, img, [(n, d) for n, d, _ in digits_pngs(1)])
    image_sid = admin.get(f"/projects/{img}/samples").json()["items"][0]["id"]
    assert admin.get(f"/samples/{image_sid}/explanation").status_code == 422


@pytest.mark.parametrize("source,target", [("sqlite", "sqlite"), ("sqlite", "postgres")])
def test_documents_and_their_word_search_survive_a_backup(tmp_path, request, source, target):
    from app.backup import backup, restore
    from app.main import create_app
    from tests.reliability.conftest import create_admin
    from tests.reliability.test_backup import _empty_database

    src_dir, dst_dir = tmp_path / "src", tmp_path / "dst"
    src_dir.mkdir(), dst_dir.mkdir()
    rows = ag_news(40)
    docs = [(r["label"], r["text"].strip()) for r in rows]
    with fresh_database(source, src_dir, request) as src_url:
        src = make_settings(src_dir, src_url)
        create_admin(src)
        with TestClient(create_app(src)) as client:
            admin = Api(client).login_as("admin", ADMIN_PASSWORD)
            pid = _project(admin)
            _import(admin, pid, docs, labelled=10)
            before = admin.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text
            found = _search(admin, pid, "the")
        archive = tmp_path / "loupe.tar.gz"
        backup(src.database_url, src.media_path, archive, log=lambda _m: None)
    with _empty_database(target, dst_dir, request) as dst_url:
        dst = make_settings(dst_dir, dst_url)
        restore(archive, dst.database_url, dst.media_path, log=lambda _m: None)
        with TestClient(create_app(dst)) as client:
            admin = Api(client).login_as("admin", ADMIN_PASSWORD)
            assert admin.get(f"/projects/{pid}/export", params={"format": "jsonl"}).text == before
            assert 10 < len(found) < 40 and _search(admin, pid, "the") == found  # the index came back
            sid = found[0]
            assert admin.get(f"/samples/{sid}/text").json()["text"] in {t for _, t in docs}
            # New documents after the restore are found too (the triggers or the GIN index keep up).
            _import(admin, pid, [("World", "A zanzibar ferry sank on Friday.")])
            assert len(_search(admin, pid, "zanzibar")) == 1


def test_the_train_jobs_ngram_step_reads_a_bounded_sample_of_the_pool(admin, settings, monkeypatch):
    """workers/jobs/explain_terms.py on a real project's documents: past ``MAX_DOCS`` it reads a sample,
    and what it stores is what the endpoint reads (an image project stores nothing)."""
    from app import explanation_store
    from ml.fit import Pool
    from workers.jobs import explain_terms
    from workers.jobs.context import JobContext

    pid = _project(admin)
    rows = ag_news(60)
    ids = sorted(_import(admin, pid, [(r["label"], r["text"]) for r in rows]).values())
    rng = np.random.default_rng(0)
    X = rng.standard_normal((len(ids), 8)).astype(np.float32)
    proba = rng.dirichlet(np.ones(4), len(ids)).astype(np.float32)
    pool = Pool(ids=np.asarray(ids, np.int64), X=X, y=np.full(len(ids), -1), audit=np.zeros(len(ids), bool))
    ctx = JobContext(job_id=0, project_id=pid, classes=CLASSES, settings={}, params={}, db_url=settings.database_url,
                     media=settings.media_path, current_backbone_version_id=None, current_embedding=None, kind="text")
    read: list[int] = []
    from ml import ngram_weights

    real = ngram_weights.class_ngram_weights

    def counted(texts, Z, p, **kw):
        read.append(len(texts))
        assert len(texts) == len(Z) == len(p)
        return real(texts, Z, p, **kw)

    monkeypatch.setattr(ngram_weights, "class_ngram_weights", counted)
    monkeypatch.setattr(explain_terms, "MAX_DOCS", 25)
    stored = explain_terms.refresh(ctx, pool, proba, 7)
    assert read == [25] and stored and stored > 0
    weights = explanation_store.read(settings.media_path, pid, 7)
    assert weights is not None and set(weights) == set(CLASSES)
    assert explain_terms.refresh(JobContext(**{**ctx.__dict__, "kind": "image"}), pool, proba, 8) is None
    assert explanation_store.read(settings.media_path, pid, 8) is None
