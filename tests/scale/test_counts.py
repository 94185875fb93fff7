"""Sample counts (kept by triggers on PostgreSQL, counted on SQLite) match the samples table through
imports, labels, undo and the train job's compaction."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import session_scope
from app.models import Sample, SampleCount
from app.repos import samples as samples_repo
from tests.conftest import digits_pngs, upload


def _truth(url: str, pid: int) -> tuple[int, int]:
    with session_scope(url) as s:
        total = s.scalar(select(func.count()).where(Sample.project_id == pid))
        labelled = s.scalar(select(func.count()).where(Sample.project_id == pid, Sample.status == "labelled"))
    return int(total), int(labelled)


def _api_counts(admin, pid: int) -> tuple[int, int]:
    p = admin.get(f"/projects/{pid}").json()
    m = admin.get(f"/projects/{pid}/metrics").json()
    assert (p["sample_count"], p["labelled_count"]) == (m["sample_count"], m["labelled_count"])
    return p["sample_count"], p["labelled_count"]


def test_counts_follow_imports_labels_undo_and_compaction(admin, digits_project, settings):
    pid = digits_project["id"]
    url = settings.database_url
    assert _api_counts(admin, pid) == (0, 0)
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(40)]).status_code == 201
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(50, offset=30)]).status_code == 201  # 10 dupes
    assert _api_counts(admin, pid) == _truth(url, pid) == (80, 0)
    items = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 7}).json()["items"]
    r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": i["sample_id"], "label": "3"} for i in items])
    assert r.status_code == 201, r.text
    # Relabelling a labelled sample changes nothing in the counts.
    r2 = admin.post(f"/projects/{pid}/labels", json={"sample_id": items[0]["sample_id"], "label": "4"})
    assert r2.status_code == 201, r2.text
    assert _api_counts(admin, pid) == _truth(url, pid) == (80, 7)
    undo = admin.delete(f"/labels/{r2.json()['items'][0]['id']}")
    assert undo.status_code == 200, undo.text
    assert _api_counts(admin, pid) == _truth(url, pid) == (80, 7)
    with session_scope(url) as s:
        samples_repo.compact_counts(s, pid)
    assert _api_counts(admin, pid) == _truth(url, pid) == (80, 7)
    if url.startswith("postgresql"):
        with session_scope(url) as s:
            assert s.scalar(select(func.count()).select_from(SampleCount).where(SampleCount.project_id == pid)) == 1
