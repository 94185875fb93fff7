"""Schema 0010 on an existing database: the new-label counter recounted without second opinions, model
numbers per project in id order, and every model version given the counter (nothing due at once)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import select

from app.db import get_engine, session_scope
from app.models import ModelVersion, Project
from tests.conftest import digits_pngs, upload
from tests.project.test_migrations import _cfg


def test_migration_0010_recounts_and_numbers(admin, settings):
    from app.repos.label_counts import totals

    url = settings.database_url
    pids = []
    for name in ("a", "b"):
        pid = admin.post("/projects", json={"name": name, "classes": ["x", "y"], "settings": {
            "auto_pretrain": False, "auto_embed": False, "retrain_every": 1000}}).json()["id"]
        assert upload(admin, pid, [(f, d) for f, d, _ in digits_pngs(6)]).status_code == 201
        pids.append(pid)
    sids = [s["id"] for s in admin.get(f"/projects/{pids[0]}/samples").json()["items"]]
    bob = admin.new_user("bob")
    admin.post(f"/projects/{pids[0]}/members", json={"username": "bob", "role": "annotator"})
    admin.post(f"/projects/{pids[0]}/labels", json=[{"sample_id": s, "label": "x"} for s in sids[:4]])
    admin.post(f"/projects/{pids[0]}/labels", json={"sample_id": sids[0], "label": "y"})  # a correction: counts
    r = bob.post(f"/projects/{pids[0]}/labels", json={"sample_id": sids[1], "label": "y"})  # a second opinion
    assert r.json()["items"][0]["opinion"] == "second"
    with session_scope(url) as s:  # versions of the two projects, interleaved ids
        for pid in (pids[0], pids[1], pids[0]):
            mv = ModelVersion(project_id=pid, estimator="logistic", strategy="mixed", label_count=0)
            s.add(mv)
            s.flush()
            s.get(Project, pid).current_model_version_id = mv.id
    get_engine(url).dispose()
    command.downgrade(_cfg(url), "0009")  # the counter counts every "set" revision again, as before
    with session_scope(url) as s:
        assert totals(s, pids[0]).set_labels == 6
    command.upgrade(_cfg(url), "head")
    with session_scope(url) as s:
        assert totals(s, pids[0]).set_labels == 5
        rows = s.execute(select(ModelVersion.project_id, ModelVersion.number, ModelVersion.label_revisions)
                         .order_by(ModelVersion.id)).all()
    assert [tuple(r) for r in rows] == [(pids[0], 1, 5), (pids[1], 1, 0), (pids[0], 2, 5)]
    assert admin.get(f"/projects/{pids[0]}/metrics").json()["labels_until_retrain"] == 1000
