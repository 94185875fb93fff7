"""Samples taken out of the pool leave the figures as well as the queue, and come back to both (issue 18,
item 3): the project's counts (its page and the project list), the dashboard's metrics (counts, human
labels, class balance) and the labels the train job fits and audits on."""

from __future__ import annotations

from app.repos.predictions import training_pool
from tests.conftest import digits_pngs, imagefolder_zip, upload


def _figures(admin, pid: int) -> tuple:
    m = admin.get(f"/projects/{pid}/metrics").json()
    p = admin.get(f"/projects/{pid}").json()
    listed = next(x for x in admin.get("/projects").json() if x["id"] == pid)
    return ((p["sample_count"], p["labelled_count"]), (listed["sample_count"], listed["labelled_count"]),
            (m["sample_count"], m["labelled_count"], m["human_label_count"]), m["class_balance"])


def test_excluded_samples_leave_the_figures_and_come_back(admin, digits_project, db_url):
    pid = digits_project["id"]
    # Eight samples in the imported folders (labelled by the import), four more unlabelled.
    r = admin.post(f"/projects/{pid}/samples", params={"labels_from_folders": "true"},
                   files=[("files", ("d.zip", imagefolder_zip(digits_pngs(8))))])
    assert r.status_code == 201, r.text
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(4, offset=20)]).status_code == 201
    samples = admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"]
    unlabelled = sorted(s["id"] for s in samples if s["status"] == "unlabelled")
    assert len(unlabelled) == 4, samples
    # An expert labels two of them "9".
    for sid in unlabelled[:2]:
        assert admin.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": "9"}).status_code == 201
    before = _figures(admin, pid)
    assert before[0] == before[1] == (12, 10) and before[2] == (12, 10, 2), before
    assert before[3]["9"] == 2, before
    assert set(training_pool(db_url, pid).labels) >= set(unlabelled[:2])

    # Out: one expert-labelled sample and one unlabelled one.
    out = [unlabelled[0], unlabelled[3]]
    r = admin.post(f"/projects/{pid}/exclusions", json={"sample_ids": out, "reason": "outlier"})
    assert r.json()["excluded"] == 2, r.text
    after = _figures(admin, pid)
    assert after[0] == after[1] == (10, 9), after
    assert after[2] == (10, 9, 1), after
    assert after[3]["9"] == 1 and sum(after[3].values()) == 9, after
    pool = training_pool(db_url, pid)
    assert unlabelled[0] not in pool.labels and unlabelled[1] in pool.labels and len(pool.labels) == 9
    assert set(out) <= set(pool.ids.tolist())  # still scored, as an unlabelled sample is, to come back

    # The sample browser says which are set aside and why (a label given there counts nowhere): the
    # list and the detail alike, for every page and order.
    for params in ({"limit": 100}, {"limit": 100, "sort": "-created"}, {"limit": 100, "status": "unlabelled"}):
        page = admin.get(f"/projects/{pid}/samples", params=params).json()["items"]
        assert {s["id"]: s["set_aside"] for s in page if s["set_aside"]} == {
            sid: "outlier" for sid in out if sid in {s["id"] for s in page}}, (params, page)
    assert admin.get(f"/samples/{out[0]}").json()["set_aside"] == "outlier"
    assert admin.get(f"/samples/{unlabelled[1]}").json()["set_aside"] is None

    # Back: every figure as it was.
    assert admin.post(f"/projects/{pid}/exclusions/remove", json={"sample_ids": out}).json()["included"] == 2
    assert _figures(admin, pid) == before
    assert not any(s["set_aside"] for s in admin.get(f"/projects/{pid}/samples", params={"limit": 100}).json()["items"])
    assert len(training_pool(db_url, pid).labels) == 10
