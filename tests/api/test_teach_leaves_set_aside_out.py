"""A sample an expert set aside (taken out of the pool, issue 18) is never offered for labelling again: not
by the teach view's suggestions, nor its neighbourhoods, nor its unexplored groups. Labelling one there
would count nowhere (the figures leave it out): the teach view's batch said "Label 34" and 33 were counted
(CI, test_ui_trust_teach: a set-aside blank image was suggested as a digit)."""

from __future__ import annotations

from tests.conftest import digits_pngs, running_worker, upload, wait_for_job


def _offered(admin, pid: int, anchor: int) -> dict[str, set[int]]:
    out = {f"suggested {c}": {i["sample_id"] for i in admin.get(
        f"/projects/{pid}/suggestions", params={"label": c, "limit": 500}).json()["items"]} for c in "0123456789"}
    out["neighbours"] = {i["sample_id"] for i in admin.get(
        f"/projects/{pid}/neighbours", params={"sample_id": anchor, "limit": 500}).json()["items"]}
    out["unexplored"] = {i["sample_id"] for i in admin.get(
        f"/projects/{pid}/unexplored", params={"limit": 500}).json()["items"]}
    return out


def test_set_aside_samples_are_not_offered_by_the_teach_view(admin, digits_project, settings):
    pid = digits_project["id"]
    admin.patch(f"/projects/{pid}", json={"settings": {"retrain_every": 100_000}})
    items = digits_pngs(120)
    assert upload(admin, pid, [(n, d) for n, d, _ in items]).status_code == 201
    samples = sorted(admin.get(f"/projects/{pid}/samples", params={"limit": 500}).json()["items"],
                     key=lambda s: s["id"])
    truth = {s["id"]: c for s, (_, _, c) in zip(samples, items, strict=True)}
    ids = [s["id"] for s in samples]
    r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": i, "label": truth[i]} for i in ids[:40]])
    assert r.status_code in (200, 201), r.text
    with running_worker(settings):
        job = admin.post(f"/projects/{pid}/jobs", json={"kind": "train"}).json()
        assert wait_for_job(admin, job["id"], timeout=180)["state"] == "succeeded"
    anchor = ids[0]
    before = _offered(admin, pid, anchor)
    # Set aside the surest suggestion of each class and the five nearest neighbours of the anchor.
    offered = set().union(*before.values())
    aside = {min(v) for k, v in before.items() if k.startswith("suggested") and v}
    aside |= set(sorted(before["neighbours"])[:5]) | set(sorted(before["unexplored"])[:2])
    assert len(aside) >= 5 and aside <= offered, before
    r = admin.post(f"/projects/{pid}/exclusions", json={"sample_ids": sorted(aside), "reason": "outlier"})
    assert r.status_code == 200 and r.json()["excluded"] == len(aside), r.text
    after = _offered(admin, pid, anchor)
    for view, got in after.items():
        assert not got & aside, f"{view} still offers set-aside samples {sorted(got & aside)}"
        assert got == before[view] - aside, view  # and nothing else changed
    # Brought back, they are offered again.
    assert admin.post(f"/projects/{pid}/exclusions/remove", json={"sample_ids": sorted(aside)}).status_code == 200
    assert _offered(admin, pid, anchor) == before
