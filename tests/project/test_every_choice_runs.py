"""Every estimator, query strategy, embedding layer and self-supervised method the ml registries offer a
project is accepted by the settings endpoint and makes a working round on a small real image project (48
digit images, a real worker, budgets of a second or two): a name the settings offer and the service cannot
run fails here, as does one the registries have and the settings refuse."""

from __future__ import annotations

from itertools import zip_longest

import pytest

from app.services.project_settings import EMBEDDING_LAYERS, NOT_PROJECT_ESTIMATORS
from tests.conftest import digits_pngs, imagefolder_zip, running_worker, upload, wait_for_job
from tests.workers.test_pipeline import _jobs, _new_project, loop  # noqa: F401 - loop is the fixture

N_IMAGES, N_LABELS = 48, 30


def _registered() -> tuple[list[str], list[str], list[str]]:
    from ml.estimators import list_estimators
    from ml.ssl import list_methods
    from ml.strategies import list_strategies

    return [e for e in list_estimators() if e not in NOT_PROJECT_ESTIMATORS], list_strategies(), list_methods()


def _ready_project(settings, admin) -> int:
    """A pretrained project (one short chunk) with N_LABELS true labels, every job done."""
    pid, truth = _new_project(admin, n=N_IMAGES, pretrain_budget_s=2, retrain_every=100_000, batch_size=5)
    assert wait_for_job(admin, _jobs(admin, pid)["pretrain"]["id"], timeout=180)["state"] == "succeeded"
    items = admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"]
    labels = [{"sample_id": s["id"], "label": truth[s["filename"]]} for s in items[:N_LABELS]]
    assert admin.post(f"/projects/{pid}/labels", json=labels).status_code == 201
    _idle(admin, pid)
    return pid


def _idle(admin, pid: int) -> None:
    """Wait until no job of the project is queued or running, the follow-ups of those waited for included
    (a job queues its follow-up before it ends: the next look sees it)."""
    while busy := [j for j in admin.get(f"/projects/{pid}/jobs").json() if j["state"] in ("queued", "running")]:
        for job in busy:
            assert wait_for_job(admin, job["id"], timeout=180)["state"] == "succeeded", job


def _set(admin, pid: int, **settings) -> None:
    r = admin.patch(f"/projects/{pid}", json={"settings": settings})
    assert r.status_code == 200, r.text
    assert {k: r.json()["settings"][k] for k in settings} == settings


def _train(admin, pid: int) -> dict:
    job = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()
    assert wait_for_job(admin, job["id"], timeout=180)["state"] == "succeeded", job
    return _current_model(admin, pid)


def _current_model(admin, pid: int) -> dict:
    return next(m for m in admin.get(f"/projects/{pid}/versions").json()["models"] if m["current"])


# One test, one worker: the registries' choices share its start and its first torch import (a second
# test paid both again). The two halves use projects of their own, and had 300 s each.
@pytest.mark.timeout(600)
def test_every_choice_the_registries_offer_is_accepted_and_runs(loop):  # noqa: F811
    settings, admin = loop
    with running_worker(settings):
        _every_estimator_strategy_and_layer_makes_a_round(settings, admin)
        _every_self_supervised_method_pretrains(admin)


def _every_estimator_strategy_and_layer_makes_a_round(settings, admin) -> None:
    estimators, strategies, _ = _registered()
    pid = _ready_project(settings, admin)
    # Pairs, so that every estimator and every strategy runs once (not the product).
    for estimator, strategy in zip_longest(estimators, strategies, fillvalue=None):
        _set(admin, pid, estimator=estimator or estimators[0], strategy=strategy or strategies[0])
        model = _train(admin, pid)
        assert model["estimator"] == (estimator or estimators[0]) and model["label_count"] == N_LABELS
        if estimator == "co_training":  # two layers of one backbone: the last block and the two before it
            assert model["metrics"]["views"].startswith("the last block"), model["metrics"]
            # Its predictions are stored: every sample has the co-trained model's suggestion (the listing
            # joins the current model version's predictions only).
            items = admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"]
            assert len(items) == N_IMAGES and all(0 < (s["suggestion"] or {}).get("confidence", 0) <= 1
                                                  for s in items), items[:3]
    _set(admin, pid, estimator="logistic", strategy="margin")
    for layer in EMBEDDING_LAYERS:
        _set(admin, pid, embedding_layer=layer)  # queues a re-embed, which queues a train
        _idle(admin, pid)
        emb = next(e for e in admin.get(f"/projects/{pid}/versions").json()["embeddings"] if e["current"])
        assert (emb["layer"], emb["count"]) == (layer, N_IMAGES)
        assert sum(emb["metrics"]["blocks"]) == emb["dim"]
        # The train the re-embed queued has run on the new embeddings (no second train needed).
        model = _current_model(admin, pid)
        assert model["embedding_version_id"] == emb["id"] and model["label_count"] == N_LABELS, model
        if layer.startswith("weighted"):  # 30 labels: the weights are learned, one per block
            weights = model["metrics"]["block_weights"]
            assert weights["learned"] and len(weights["weights"]) == len(emb["metrics"]["blocks"]) > 1, weights


def _every_self_supervised_method_pretrains(admin) -> None:
    _, _, methods = _registered()
    # A second project beside the first one (project names are unique), with its images embedded first.
    cfg = {"auto_pretrain": False, "pretrain_budget_s": 6, "pretrain_total_budget_s": 6, "retrain_every": 100_000,
           "batch_size": 10}  # _new_project's, as before
    pid = admin.post("/projects", json={"name": "ssl methods", "classes": [str(i) for i in range(10)],
                                        "settings": cfg}).json()["id"]
    assert upload(admin, pid, [("digits.zip", imagefolder_zip(digits_pngs(N_IMAGES)))]).status_code == 201
    for method in methods:
        _set(admin, pid, ssl_method=method)
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "pretrain", "params": {"budget_seconds": 1}}).json()
        done = wait_for_job(admin, job["id"], timeout=180)
        assert done["state"] == "succeeded", done
        backbones = admin.get(f"/projects/{pid}/versions").json()["backbones"]
        assert any(b["job_id"] == job["id"] and b["method"] == method for b in backbones), (method, backbones)
