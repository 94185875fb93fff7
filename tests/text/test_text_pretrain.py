"""A text project's pretraining with a real worker (issue 19): the pretrain job trains the project's own
tokenizer and encoder by masked-language modelling on its documents, records it as a backbone version and
switches the project to TF-IDF and the encoder side by side (no labels yet: the first encoder); the next
embed job (new documents) embeds with that encoder, and the train job after it fits on both views."""

from __future__ import annotations

import json

from tests.conftest import running_worker, upload, wait_for_job
from tests.text.test_text_import import CLASSES, ag_news
from tests.workers.test_pipeline import _jobs, loop  # noqa: F401 - the worker tests' fixture


def _jsonl(rows: list[dict], start: int) -> bytes:
    return "\n".join(json.dumps({"id": f"d{start + i}", "text": r["text"]}) for i, r in enumerate(rows)).encode()


def test_the_pretrain_job_trains_an_encoder_that_the_embed_job_then_uses(loop):  # noqa: F811
    settings, admin = loop
    pid = admin.post("/projects", json={"name": "news-mlm", "kind": "text", "classes": CLASSES, "settings": {
        "auto_embed": False, "auto_pretrain": False, "embedding_layer": "concat:3"}}).json()["id"]
    assert upload(admin, pid, [("news.jsonl", _jsonl(ag_news(120), 0))]).json()["created"] == 120
    with running_worker(settings):
        # One epoch (two steps of 64 documents): a fixed amount of training, whatever the machine's load.
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain", "params": {"epochs": 1}}).json()
        done = wait_for_job(admin, job["id"])
        assert done["state"] == "succeeded", done
        result = done["result"]
        assert result["method"] == "mlm" and result["documents"] == 120 and result["steps"] == 1, result
        assert result["switched"], result  # nothing to compare with yet: the first encoder is taken
        versions = admin.get(f"/projects/{pid}/versions").json()
        backbone = versions["backbones"][0]
        assert backbone["current"] and backbone["method"] == "mlm" and backbone["backbone"] == "text_encoder"
        emb = versions["embeddings"][0]
        # TF-IDF reduced to 119 dimensions (120 documents) beside the encoder's three layers of 128.
        assert emb["current"] and emb["kind"] == "text_encoder" and emb["backbone_version_id"] == backbone["id"]
        assert emb["metrics"]["blocks"] == [119, 3 * 128] and emb["dim"] == 119 + 384 and emb["count"] == 120, emb

        # New documents: the embed job keeps the project's encoder (no new training) for all of them.
        assert upload(admin, pid, [("more.jsonl", _jsonl(ag_news(10, offset=120), 120))]).json()["created"] == 10
        embed = wait_for_job(admin, admin.post(f"/projects/{pid}/jobs", json={"kind": "embed"}).json()["id"])
        assert embed["state"] == "succeeded" and embed["result"]["kind"] == "text_encoder", embed
        emb2 = admin.get(f"/projects/{pid}/versions").json()["embeddings"][0]
        assert emb2["current"] and emb2["id"] != emb["id"] and emb2["count"] == 130
        assert emb2["backbone_version_id"] == backbone["id"] and emb2["metrics"]["blocks"][1] == 384, emb2
        train = wait_for_job(admin, _jobs(admin, pid)["train"]["id"])
        assert train["state"] == "succeeded", train
