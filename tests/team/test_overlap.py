"""Second opinions on purpose (issue 17, item 3): the ``overlap`` setting serves a share of the samples,
after their first label, to a second annotator who does not see that label; the dashboard's metrics give
the agreement per annotator pair (Cohen's kappa, raw agreement, per class) with intervals."""

from __future__ import annotations

import pytest

from tests.conftest import digits_pngs, upload


def _team(admin, n: int, overlap: float | None = 1.0):
    settings: dict = {"auto_pretrain": False, "auto_embed": False}
    if overlap is not None:
        settings["overlap"] = overlap
    body = {"name": "overlap", "classes": ["a", "b", "c"], "settings": settings}
    pid = admin.post("/projects", json=body).json()["id"]
    upload(admin, pid, [(name, data) for name, data, _ in digits_pngs(n)])
    users = {}
    for name in ("ann", "bea", "cy"):
        users[name] = admin.new_user(name)
        admin.post(f"/projects/{pid}/members", json={"username": name, "role": "annotator"})
    return pid, users


def _lease(api, pid: int, limit: int = 20) -> list[dict]:
    r = api.post(f"/projects/{pid}/queue/lease", params={"limit": limit})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _label(api, pid: int, pairs) -> None:
    r = api.post(f"/projects/{pid}/labels", json=[{"sample_id": s, "label": lab} for s, lab in pairs])
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("bad", [-0.1, 1.5, "half"])
def test_the_overlap_setting_is_a_share_between_0_and_1(admin, bad):
    r = admin.post("/projects", json={"name": "p", "classes": ["a", "b"], "settings": {"overlap": bad}})
    assert r.status_code == 422 and "overlap" in r.text, r.text
    pid = admin.post("/projects", json={"name": "q", "classes": ["a", "b"]}).json()["id"]
    assert admin.get(f"/projects/{pid}").json()["settings"]["overlap"] == 0.0  # off unless asked for
    r = admin.patch(f"/projects/{pid}", json={"settings": {"overlap": bad}})
    assert r.status_code == 422 and "overlap" in r.text, r.text
    r = admin.patch(f"/projects/{pid}", json={"settings": {"overlap": 0.25}})
    assert r.status_code == 200 and r.json()["settings"]["overlap"] == 0.25


def test_with_overlap_1_a_second_annotator_gets_the_same_samples_without_the_first_label(admin):
    pid, u = _team(admin, 8)
    first = _lease(u["ann"], pid)
    assert len(first) == 8 and not any(i["second_opinion"] for i in first)
    _label(u["ann"], pid, [(i["sample_id"], "a") for i in first])
    # The first labeller is not asked again; anyone else gets the same samples, marked as second opinions.
    assert _lease(u["ann"], pid) == []
    second = _lease(u["bea"], pid)
    assert sorted(i["sample_id"] for i in second) == sorted(i["sample_id"] for i in first)
    for item in second:
        assert item["second_opinion"] and item["strategy"] == "overlap" and "not shown" in item["reason"]
        # Nothing in the item names the first label (no model yet: no suggestion either).
        assert item["suggestion"] is None and "a" not in {v for k, v in item.items() if k != "filename"}
    # What bea holds stays hers through a reload (GET reads, POST renews), and nobody else gets it.
    held = u["bea"].get(f"/projects/{pid}/queue", params={"limit": 20}).json()["items"]
    assert sorted(i["sample_id"] for i in held) == sorted(i["sample_id"] for i in second)
    assert all(i["second_opinion"] for i in held)
    assert _lease(u["cy"], pid) == []
    # bea agrees on all but two; those two go to review, the first labels stand.
    ids = [i["sample_id"] for i in second]
    _label(u["bea"], pid, [(s, "b" if k < 2 else "a") for k, s in enumerate(ids)])
    reviews = admin.get(f"/projects/{pid}/reviews").json()
    assert sorted(r["sample_id"] for r in reviews) == sorted(ids[:2])
    assert {r["reason"] for r in reviews} == {"annotators_disagree"}
    assert {admin.get(f"/samples/{s}").json()["label"] for s in ids} == {"a"}
    # Two opinions each: no third annotator is asked.
    assert _lease(u["cy"], pid) == []
    pair = admin.get(f"/projects/{pid}/metrics").json()["agreement"]["pairs"]
    assert [(p["annotators"], p["n"], p["agreeing"]) for p in pair] == [(["ann", "bea"], 8, 6)]


def test_an_undone_second_opinion_asks_again_and_an_undone_first_label_asks_nothing(admin):
    pid, u = _team(admin, 2)
    s1, s2 = sorted(i["sample_id"] for i in _lease(u["ann"], pid))
    _label(u["ann"], pid, [(s1, "a")])
    _label(u["ann"], pid, [(s2, "b")])
    assert sorted(i["sample_id"] for i in _lease(u["bea"], pid)) == [s1, s2]
    r = u["bea"].post(f"/projects/{pid}/labels", json={"sample_id": s1, "label": "c"})
    assert u["bea"].delete(f"/labels/{r.json()['items'][0]['id']}").status_code == 200
    assert [i["sample_id"] for i in _lease(u["cy"], pid)] == [s1]  # s2 is bea's still
    newest = u["ann"].get(f"/projects/{pid}/labels/mine").json()["items"][0]
    assert newest["sample_id"] == s2
    assert u["ann"].delete(f"/labels/{newest['label_id']}").status_code == 200
    # s2 is unlabelled again: bea's lease now holds a first label to give, not a second opinion.
    held = {i["sample_id"]: i for i in _lease(u["bea"], pid)}
    assert s2 in held and not held[s2]["second_opinion"]


def test_overlap_picks_its_share_of_samples_and_applies_to_labels_already_given(admin):
    pid, u = _team(admin, 40, overlap=None)
    # ann labels the whole pool; a lease skips rows another transaction holds locked (PostgreSQL's SKIP
    # LOCKED), so one lease of 40 may leave a sample for the next (seen in a fresh-clone run).
    while items := _lease(u["ann"], pid, 40):
        _label(u["ann"], pid, [(i["sample_id"], "a") for i in items])
    assert _lease(u["bea"], pid) == []  # no overlap: nothing to give a second opinion on
    assert admin.patch(f"/projects/{pid}", json={"settings": {"overlap": 0.5}}).status_code == 200
    half = _lease(u["bea"], pid, 40)
    assert 17 <= len(half) <= 23 and all(i["second_opinion"] for i in half)  # the share, evenly spread
    assert admin.get(f"/projects/{pid}/metrics").json()["agreement"]["awaiting_second"] == len(half)
    # A larger overlap keeps every sample a smaller one picked; lowering it withdraws the rest.
    u["bea"].post(f"/projects/{pid}/queue/release", json={"sample_ids": [i["sample_id"] for i in half]})
    admin.patch(f"/projects/{pid}", json={"settings": {"overlap": 0.75}})
    more = {i["sample_id"] for i in _lease(u["bea"], pid, 40)}
    assert {i["sample_id"] for i in half} < more
    admin.patch(f"/projects/{pid}", json={"settings": {"overlap": 0.0}})
    assert _lease(u["cy"], pid, 40) == []
    assert admin.get(f"/projects/{pid}/metrics").json()["agreement"]["awaiting_second"] == 0


def test_kappa_raw_and_per_class_agreement_match_a_hand_computation(admin):
    """ann: a a a a b b b c c c; bea: a a a b b b c c c a. Raw agreement 7/10; both use a, b and c
    4, 3 and 3 times, so chance agreement is .4^2 + .3^2 + .3^2 = .34 and kappa (.7 - .34) / (1 - .34)
    = 6/11. Of the samples either called a, both did on 3 of 5; b 2 of 4; c 2 of 4."""
    pid, u = _team(admin, 10)
    ids = sorted(i["sample_id"] for i in _lease(u["ann"], pid))
    ann, bea = "aaaabbbccc", "aaabbbccca"
    _label(u["ann"], pid, list(zip(ids, ann, strict=True)))
    assert sorted(i["sample_id"] for i in _lease(u["bea"], pid)) == ids
    _label(u["bea"], pid, list(zip(ids, bea, strict=True)))
    agreement = admin.get(f"/projects/{pid}/metrics").json()["agreement"]
    (pair,) = agreement["pairs"]
    assert pair["annotators"] == ["ann", "bea"] and pair["n"] == 10 and pair["agreeing"] == 7
    assert pair["agreement"] == pytest.approx(0.7)
    assert pair["kappa"] == pytest.approx(6 / 11)
    lo, hi = pair["kappa_ci"]
    assert -1 <= lo < 6 / 11 < hi <= 1
    lo, hi = pair["agreement_ci"]  # Wilson, 7 of 10
    assert lo == pytest.approx(0.3968, abs=1e-3) and hi == pytest.approx(0.8922, abs=1e-3)
    assert pair["few_samples"] is True  # 10 shared samples: flagged, not hidden
    by_hand = [("a", 5, 3), ("b", 4, 2), ("c", 4, 2)]
    assert [(c["class"], c["n"], c["agreeing"]) for c in pair["classes"]] == by_hand
    assert [(c["class"], c["n"], c["agreeing"]) for c in agreement["classes"]] == by_hand
    assert agreement["shared"] == 10 and agreement["shared_agreement"] == pytest.approx(0.7)
    assert agreement["open_reviews"] == 3  # the three disagreements


def test_every_sample_of_an_overlap_class_gets_a_second_opinion(admin):
    """``overlap_classes``: a sample first labelled as one of them goes to a second annotator whatever the
    share; a class the project lacks is refused naming the setting; a change applies to labels given."""
    r = admin.post("/projects", json={"name": "p", "classes": ["a", "b"], "settings": {"overlap_classes": ["zebra"]}})
    assert r.status_code == 422 and "overlap_classes" in r.text and "zebra" in r.text, r.text
    pid, u = _team(admin, 6, overlap=None)
    r = admin.patch(f"/projects/{pid}", json={"settings": {"overlap_classes": ["b", "zebra", "yak"]}})
    assert r.status_code == 422 and "'yak' and 'zebra' are not classes" in r.json()["detail"], r.text
    assert admin.patch(f"/projects/{pid}", json={"settings": {"overlap_classes": ["b"]}}).status_code == 200
    ids = sorted(i["sample_id"] for i in _lease(u["ann"], pid))
    first = dict(zip(ids, "ababab", strict=True))
    _label(u["ann"], pid, first.items())
    as_b = sorted(s for s, lab in first.items() if lab == "b")
    assert sorted(i["sample_id"] for i in _lease(u["bea"], pid)) == as_b
    u["bea"].post(f"/projects/{pid}/queue/release", json={"sample_ids": as_b})
    # Now class a instead: the samples labelled a await a second opinion, those labelled b no longer.
    admin.patch(f"/projects/{pid}", json={"settings": {"overlap_classes": ["a"]}})
    assert sorted(i["sample_id"] for i in _lease(u["bea"], pid)) == sorted(set(ids) - set(as_b))
    assert admin.get(f"/projects/{pid}/metrics").json()["agreement"]["overlap_classes"] == ["a"]
