"""The live-label rule has one home (app/repos/labels.py): its Python form over a loaded history and its
SQL form agree on a history of labels, second opinions, undos and a batch undo."""

from __future__ import annotations

from sqlalchemy import select

from tests.team.test_opinions_and_reviews import _setup


def test_python_and_sql_forms_of_the_live_rule_agree(admin, settings):
    from app.db import session_scope
    from app.models import Label
    from app.repos import labels as label_repo

    pid, sids, u = _setup(admin)
    ann, bea = u["ann"], u["bea"]
    first = ann.post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "a"}).json()["items"][0]
    ann.post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "b"})  # a correction
    bea.post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "c"})  # a second opinion
    second = bea.post(f"/projects/{pid}/labels", json={"sample_id": sids[1], "label": "a"}).json()["items"][0]
    assert bea.delete(f"/labels/{second['id']}").status_code == 200
    # An admin undoes ann's older label: not live any more, though ann's own history has no undo of it.
    assert admin.delete(f"/labels/{first['id']}").status_code == 200
    batch = ann.post(f"/projects/{pid}/labels", headers={"X-Label-Batch": "1"},
                     json=[{"sample_id": sids[2], "label": "a"}, {"sample_id": sids[3], "label": "b"}]).json()
    assert ann.delete(f"/label-batches/{batch['batch_id']}").status_code == 200
    ann.post(f"/projects/{pid}/labels", json={"sample_id": sids[4], "label": "c"})

    with session_scope(settings.database_url) as s:
        history = list(s.scalars(select(Label).where(Label.project_id == pid).order_by(Label.id)))
        in_python = [r.id for r in label_repo.live(history)]
        in_sql = list(s.scalars(select(Label.id).where(Label.project_id == pid, label_repo.is_live())
                                .order_by(Label.id)))
        assert in_python == in_sql
        assert [r.label for r in history if r.id in in_sql] == ["b", "c", "c"]
        assert [label_repo.is_live_id(s, r.id) for r in history if r.action == "set"] == \
            [r.id in in_sql for r in history if r.action == "set"]
