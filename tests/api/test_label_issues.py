"""GET /projects/{pid}/label-issues (issue 18) on a small real project with a real worker: 409 until the
train job has checked the labels on the current embeddings, then the planted wrong labels first, each
with the model's alternative and its nearest labelled neighbours."""

from __future__ import annotations

import pytest

from tests.conftest import (
    digits_pngs,
    imagefolder_zip,
    running_worker,
    upload,
    wait_for_job,
)

# The API with an admin on SQLite that the worker tests use (``loop``: settings, admin client).
from tests.workers.test_pipeline import loop  # noqa: F401, E402

N, FLIPS = 150, 8


def _project(admin) -> tuple[int, dict[str, str]]:
    cfg = {"auto_pretrain": False, "retrain_every": 100_000, "batch_size": 10}
    pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                        "settings": cfg}).json()["id"]
    items = digits_pngs(N)
    assert upload(admin, pid, [("digits.zip", imagefolder_zip(items))]).status_code == 201
    return pid, {f"digits/{c}/{name}": c for name, _, c in items}


def _label_with_flips(admin, pid: int, truth: dict[str, str]) -> dict[int, str]:
    """Label every sample, FLIPS of them wrongly; {flipped sample id: its true digit}."""
    samples = admin.get(f"/projects/{pid}/samples", params={"limit": 1000}).json()["items"]
    assert len(samples) == N
    flipped = {s["id"]: truth[s["filename"]] for s in samples[::N // FLIPS][:FLIPS]}
    labels = [{"sample_id": s["id"], "label": str((int(truth[s["filename"]]) + 3) % 10) if s["id"] in flipped
               else truth[s["filename"]]} for s in samples]
    assert admin.post(f"/projects/{pid}/labels", json=labels).status_code == 201
    return flipped


@pytest.mark.timeout(600)  # two trains, each with a worker of its own
def test_label_issues_answer_409_then_the_planted_errors_first(loop):  # noqa: F811 (the fixture)
    settings, admin = loop
    pid, truth = _project(admin)
    before = admin.get(f"/projects/{pid}/label-issues")
    assert before.status_code == 409 and "train" in before.json()["detail"]
    with running_worker(settings):
        embed = [j for j in admin.get(f"/projects/{pid}/jobs").json() if j["kind"] == "embed"][0]
        assert wait_for_job(admin, embed["id"])["state"] == "succeeded"
        # The embeddings alone: 409 until the cold-start train the embed job queues has run, then an
        # empty list (no label to doubt yet), never a stale one.
        early = admin.get(f"/projects/{pid}/label-issues")
        assert early.status_code == 409 or (early.status_code == 200 and early.json()["items"] == []), early.text
        flipped = _label_with_flips(admin, pid, truth)
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()
        done = wait_for_job(admin, job["id"])
        assert done["state"] == "succeeded", done
    r = admin.get(f"/projects/{pid}/label-issues", params={"limit": FLIPS})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert 0 < len(items) <= FLIPS
    assert sum(i["sample_id"] in flipped for i in items) >= FLIPS * 3 // 4
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    for item in items:
        assert item["suggested_label"] != item["label"]
        assert item["neighbours"] and all(n["sample_id"] != item["sample_id"] and n["label"] in truth.values()
                                          for n in item["neighbours"])
    right = [i["suggested_label"] == flipped[i["sample_id"]] for i in items if i["sample_id"] in flipped]
    assert sum(right) >= len(right) - 1  # the alternative offered is the true digit
    assert admin.get(f"/projects/{pid}/label-issues", params={"limit": 0}).status_code == 422
    _a_retrain_scores_only_the_changed_label(settings, admin, pid, flipped)
    _older_embeddings_answer_409(settings, admin, pid)


def _a_retrain_scores_only_the_changed_label(settings, admin, pid: int, flipped: dict[int, str]) -> None:
    """Incremental: on the same embeddings, a retrain keeps the other labels' out-of-fold scores and
    scores the one corrected label alone (one fit, not ten)."""
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import LabelIssueSet

    sid, digit = next(iter(flipped.items()))
    assert admin.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": digit}).status_code == 201
    with running_worker(settings):
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()
        assert wait_for_job(admin, job["id"])["state"] == "succeeded"
    with session_scope(settings.database_url) as s:
        metrics = s.scalars(select(LabelIssueSet.metrics).where(LabelIssueSet.project_id == pid)
                            .order_by(LabelIssueSet.id.desc()).limit(1)).one()
    assert (metrics["reused"], metrics["scored_since_full_pass"]) == (N - 1, 1), metrics
    items = admin.get(f"/projects/{pid}/label-issues", params={"limit": FLIPS}).json()["items"]
    assert sid not in {i["sample_id"] for i in items}  # corrected: no longer doubted


def _older_embeddings_answer_409(settings, admin, pid: int) -> None:
    """A list computed on another embedding version than the current one is not served."""
    from sqlalchemy import update

    from app.db import session_scope
    from app.models import LabelIssueSet

    with session_scope(settings.database_url) as s:
        s.execute(update(LabelIssueSet).values(embedding_version_id=None))
    stale = admin.get(f"/projects/{pid}/label-issues")
    assert stale.status_code == 409 and "current embeddings" in stale.json()["detail"]
