"""A registered backbone as the start of a project's pretraining (real worker), and a backbone a project
learned exported as a file that registers back for other projects."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.backbones.test_rest import _checker_running, _project, register, stored_files
from tests.conftest import running_worker, wait_for_job


@pytest.mark.slow
def test_continue_pretrains_from_the_registered_weights_and_keeps_their_input_contract(loop, backbone_files):
    import torch

    from ml.training import Checkpoint

    settings, admin = loop
    reg = register(admin, backbone_files["torchscript"], name="team net", format="torchscript", input_size="32").json()
    pid = _project(admin, n=40, pretrain_budget_s=2, pretrain_total_budget_s=2)
    r = admin.patch(f"/projects/{pid}", json={"settings": {"backbone": reg["id"], "backbone_mode": "continue"}})
    assert r.status_code == 200, r.text
    jobs = {j["kind"]: j for j in admin.get(f"/projects/{pid}/jobs").json()}
    assert set(jobs) == {"embed", "pretrain"}, jobs
    with running_worker(settings):
        adopted = wait_for_job(admin, jobs["embed"]["id"], timeout=60)
        pretrained = wait_for_job(admin, jobs["pretrain"]["id"], timeout=90)
    assert adopted["state"] == "succeeded" and pretrained["state"] == "succeeded", (adopted, pretrained)
    from app.db import session_scope
    from app.models import BackboneVersion

    with session_scope(settings.database_url) as s:
        start_key = s.get(BackboneVersion, adopted["result"]["backbone_version"]).checkpoint_key
        new_key = s.get(BackboneVersion, pretrained["result"]["backbone_version"]).checkpoint_key
    start = Checkpoint.load(settings.media_dir / start_key)
    new = Checkpoint.load(settings.media_dir / new_key)
    cfg = new.config
    assert cfg["registered_backbone"] == reg["id"] and cfg["external"]["format"] == "torchscript"
    assert (cfg["image_size"], cfg["in_channels"], cfg["norm_mean"]) == (32, 3, start.config["norm_mean"])
    assert any(not torch.equal(v, new.backbone_state[k]) for k, v in start.backbone_state.items()
               if v.is_floating_point()), "continued pretraining left the weights as they were"
    versions = admin.get(f"/projects/{pid}/versions").json()
    assert {e["dim"] for e in versions["embeddings"] if e["kind"] == "backbone"} == {24}


def test_a_project_backbone_exports_and_registers_back(loop, backbone_files):
    from app.db import session_scope
    from app.models import BackboneVersion
    from ml.pretrain import random_backbone_checkpoint

    settings, admin = loop
    pid = _project(admin, n=4)
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28), dtype=np.uint8)
    key = f"checkpoints/p{pid}/learned.pt"
    (settings.media_dir / key).parent.mkdir(parents=True, exist_ok=True)
    random_backbone_checkpoint(images, backbone="cnn").save(settings.media_dir / key)
    with session_scope(settings.database_url) as s:
        bv = BackboneVersion(project_id=pid, method="simclr", backbone="cnn", params={}, metrics={}, checkpoint_key=key)
        s.add(bv)
        s.flush()
        bv_id = bv.id

    assert admin.post(f"/projects/{pid}/versions/backbones/{bv_id + 1}/export", json={}).status_code == 404
    # The export runs in a child process for seconds; on SQLite a label given meanwhile must not wait for it
    # (the export's request held the write lock through it before: the label took as long as the export).
    sid = admin.get(f"/projects/{pid}/samples").json()["items"][0]["id"]
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        exporting = pool.submit(admin.post, f"/projects/{pid}/versions/backbones/{bv_id}/export",
                                json={"name": "digits cnn"})
        while not _checker_running() and not exporting.done():
            time.sleep(0.05)
        assert not exporting.done(), exporting.result().text
        label_started = time.monotonic()
        assert admin.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": "3"}).status_code == 201
        label_s = time.monotonic() - label_started
        r = exporting.result()
        export_s = time.monotonic() - started
    assert r.status_code == 201, r.text
    assert label_s < max(1.0, export_s / 3), (label_s, export_s)
    out = r.json()
    assert (out["format"], out["input_size"], out["in_channels"], out["embedding_dim"]) == ("torchscript", 28, 1, 256)
    assert (out["source_project_id"], out["source_backbone_version_id"], out["normalization"]) == (pid, bv_id, "unit")
    file = admin.get(f"/backbones/{out['id']}/file")
    assert file.status_code == 200 and len(file.content) == out["size"]

    again = admin.post("/backbones", files={"file": ("digits.pt", file.content)},
                       data={"format": "torchscript", "name": "digits cnn, re-registered"})
    assert again.status_code == 201, again.text
    assert (again.json()["input_size"], again.json()["embedding_dim"]) == (28, 256)  # its contract came along
    assert len(stored_files(settings)) == 1  # the same bytes are stored once
    other = admin.post("/projects", json={"name": "other", "classes": ["a", "b"],
                                          "settings": {"backbone": again.json()["id"]}})
    assert other.status_code == 201 and other.json()["settings"]["backbone"] == again.json()["id"]
