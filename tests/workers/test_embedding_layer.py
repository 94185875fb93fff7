"""The project's embedding layer is what the embed job uses (it once hard-coded the last block), and a
change of it re-embeds every sample."""

from __future__ import annotations

from tests.conftest import running_worker, wait_for_job
from tests.workers.test_pipeline import _jobs, _new_project, loop  # noqa: F401 - loop is the fixture


def _current_embedding(admin, pid):
    return next(e for e in admin.get(f"/projects/{pid}/versions").json()["embeddings"] if e["current"])


def test_embedding_layer_setting_is_used_and_a_change_re_embeds(loop):  # noqa: F811
    settings, admin = loop
    pid, _ = _new_project(admin, n=120, pretrain_budget_s=3, retrain_every=1000)
    assert admin.get(f"/projects/{pid}").json()["settings"]["embedding_layer"] == "concat:3"  # the default
    with running_worker(settings):
        assert wait_for_job(admin, _jobs(admin, pid)["pretrain"]["id"], timeout=120)["state"] == "succeeded"
        emb = _current_embedding(admin, pid)
        # The compact CNN's last three blocks are 64 + 128 + 256 channels wide.
        assert (emb["kind"], emb["layer"], emb["dim"], emb["count"]) == ("backbone", "concat:3", 448, 120)

        bad = admin.patch(f"/projects/{pid}", json={"settings": {"embedding_layer": "concat:9"}})
        assert bad.status_code == 422 and "embedding_layer" in bad.text
        assert admin.patch(f"/projects/{pid}", json={"settings": {"embedding_layer": "last"}}).status_code == 200
        embeds = [j for j in admin.get(f"/projects/{pid}/jobs").json() if j["kind"] == "embed"]
        assert wait_for_job(admin, embeds[0]["id"], timeout=120)["state"] == "succeeded"
        again = _current_embedding(admin, pid)
        assert (again["layer"], again["dim"], again["count"]) == ("last", 256, 120)
        assert again["id"] != emb["id"] and again["backbone_version_id"] == emb["backbone_version_id"]
