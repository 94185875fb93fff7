"""One user in two browser tabs: each tab is served its own samples, so nothing is labelled twice."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import session_scope
from app.models import Label
from tests.conftest import digits_pngs, upload


def test_two_tabs_of_one_user_never_get_the_same_samples(admin, digits_project, settings):
    pid = digits_project["id"]
    items = digits_pngs(40)
    assert upload(admin, pid, [(n, d) for n, d, _ in items]).status_code == 201
    truth = {n: c for n, _, c in items}
    ann = admin.new_user("ann")
    assert admin.post(f"/projects/{pid}/members", json={"username": "ann", "role": "annotator"}).status_code < 300
    tab = {t: {"X-Loupe-Client": f"tab-{t}"} for t in "ab"}

    def page(t: str, limit: int = 5) -> list[dict]:
        r = ann.post(f"/projects/{pid}/queue/lease", params={"limit": limit}, headers=tab[t])
        assert r.status_code == 200, r.text
        return r.json()["items"]

    a, b = page("a"), page("b")
    assert len(a) == len(b) == 5 and not {i["sample_id"] for i in a} & {i["sample_id"] for i in b}
    # A reload of a tab serves what that tab holds first, not the other tab's.
    assert [i["sample_id"] for i in page("a")] == [i["sample_id"] for i in a]
    # Both tabs label everything they are served, page after page, as the label view does.
    labelled = 0
    while True:
        got = {t: page(t) for t in "ab"}
        if not got["a"] and not got["b"]:
            break
        assert not {i["sample_id"] for i in got["a"]} & {i["sample_id"] for i in got["b"]}
        for t, its in got.items():
            for i in its:
                body = {"sample_id": i["sample_id"], "label": truth[i["filename"]]}
                r = ann.post(f"/projects/{pid}/labels", json=body, headers=tab[t])
                assert r.status_code == 201 and r.json()["items"][0]["opinion"] == "primary"
                labelled += 1
    with session_scope(settings.database_url) as s:
        revisions = s.scalar(select(func.count()).where(Label.project_id == pid))
    assert labelled == revisions == admin.get(f"/projects/{pid}").json()["labelled_count"] == 40


def test_a_teach_batch_over_samples_labelled_meanwhile_is_refused(admin, digits_project):
    """Two tabs (or two annotators) apply the same neighbourhood: the second is refused, not relabelled."""
    pid = digits_project["id"]
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(10)]).status_code == 201
    sids = [s["id"] for s in admin.get(f"/projects/{pid}/samples").json()["items"]]
    batch = {"X-Label-Batch": "1"}
    assert admin.post(f"/projects/{pid}/labels", json=[{"sample_id": s, "label": "3"} for s in sids[:4]],
                      headers=batch).status_code == 201
    r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": s, "label": "5"} for s in sids[2:8]],
                   headers=batch)
    assert r.status_code == 409 and "2 of these samples were labelled meanwhile" in r.json()["detail"], r.text
    assert str(sids[2]) in r.json()["detail"]
    assert admin.get(f"/projects/{pid}").json()["labelled_count"] == 4  # nothing of the second stored
    assert all(admin.get(f"/samples/{s}").json()["label"] == "3" for s in sids[:4])
