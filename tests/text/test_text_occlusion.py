"""The words that drove a suggestion once a text project has its own encoder (issue 19 item 4), with a real
worker on SQLite and PostgreSQL: a pool where one word decides the class ("glacier" or "desert" among
words both classes share), the project's encoder pretrained on it, a model trained on both views; the train
job occludes each word of the documents the queue serves next and GET /samples/{sid}/explanation answers
the deciding word first, by occlusion, with its place in the document."""

from __future__ import annotations

import json
import random

import pytest

from tests.conftest import running_worker, upload, wait_for_job, worker_app

CLASSES = ["ice", "sand"]
MARKER = {"ice": "glacier", "sand": "desert"}
FILLER = ("morning report team river market people night city road light table window story music garden "
          "letter paper station friend evening bridge village winter summer corner").split()


@pytest.fixture
def on_both_databases(tmp_path, db_url):
    with worker_app(tmp_path, db_url) as pair:
        yield pair


def pool(n: int = 60, seed: int = 0) -> list[tuple[str, str]]:
    """(class, document): five words both classes use, and the class's own word somewhere among them."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        cls = CLASSES[i % 2]
        words = rng.sample(FILLER, 5)
        words.insert(rng.randrange(len(words) + 1), MARKER[cls])
        out.append((cls, " ".join(words).capitalize() + "."))
    return out


def test_the_word_that_decides_the_class_is_ranked_first_by_occlusion(on_both_databases):
    settings, admin = on_both_databases
    pid = admin.post("/projects", json={"name": "seasons", "kind": "text", "classes": CLASSES, "settings": {
        "auto_embed": False, "auto_pretrain": False, "embedding_layer": "concat:3", "estimator": "logistic",
        "retrain_every": 1000}}).json()["id"]
    docs = pool()
    body = "\n".join(json.dumps({"id": f"d{i}", "text": t}) for i, (_, t) in enumerate(docs)).encode()
    assert upload(admin, pid, [("pool.jsonl", body)]).json()["created"] == len(docs)
    items = admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"]
    truth = {s["id"]: docs[int(s["filename"][1:])] for s in items}
    with running_worker(settings):
        # The project's encoder: one step of masked LM (a fixed amount of training, whatever the load).
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain", "params": {"epochs": 1}}).json()
        done = wait_for_job(admin, job["id"])
        assert done["state"] == "succeeded" and done["result"]["switched"], done
        emb = admin.get(f"/projects/{pid}/versions").json()["embeddings"][0]
        assert emb["current"] and emb["kind"] == "text_encoder", emb
        # Fifteen labels a class; the other 30 documents are what the queue serves next.
        labelled = [sid for cls in CLASSES for sid in [s for s, (c, _) in truth.items() if c == cls][:15]]
        r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": s, "label": truth[s][0]} for s in labelled])
        assert r.status_code == 201, r.text
        train = wait_for_job(admin, admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()["id"])
        assert train["state"] == "succeeded", train
        assert train["result"]["occluded_documents"] > 0, train["result"]
    mv = train["result"]["model_version"]
    occluded, right = 0, 0
    for sid, (cls, text) in truth.items():
        if sid in labelled:
            continue
        out = admin.get(f"/samples/{sid}/explanation").json()
        assert out["model_version"] == mv
        if out["method"] != "occlusion":  # an audit sample (its suggestion is hidden): the n-gram weights
            continue
        occluded += 1
        if out["label"] != cls:
            continue
        right += 1
        top = out["terms"][0]
        assert top["term"] == MARKER[cls] and top["weight"] > 0, (text, out["terms"])
        assert [text[a:b].lower() for a, b in top["spans"]] == [MARKER[cls]]
        assert all(t["weight"] < top["weight"] for t in out["terms"][1:])
        # Another class than the suggestion: no occlusion was stored for it, the n-gram weights answer.
        other = admin.get(f"/samples/{sid}/explanation", params={"label": CLASSES[1 - CLASSES.index(cls)]}).json()
        assert other["method"] == "ngrams"
    assert occluded >= 20, occluded  # 30 unlabelled, a few of them audit samples
    assert right >= 0.8 * occluded, (right, occluded)  # the model learnt the deciding word
