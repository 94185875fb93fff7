"""The queue serves every unlabelled sample it has room for. The audit quota says how many audit samples a
page should hold at least; it is not a cap that leaves samples unserved. Before the fix, a project with more
audit samples than its quota got short pages. With ``audit_fraction`` 0 its audit samples were never served at
all: the queue said "done" while samples were still unlabelled. CI saw a short first page on 10 samples."""

from __future__ import annotations

import pytest

from tests.conftest import digits_pngs, upload


def _audit_count(admin, pid: int) -> int:
    return len(admin.get(f"/projects/{pid}/samples", params={"audit": True, "limit": 200}).json()["items"])


@pytest.mark.parametrize("audit_fraction", [0.0, 0.1])
def test_one_lease_serves_the_whole_small_pool_and_labelling_it_empties_the_queue(admin, audit_fraction):
    body = {"name": "fill", "classes": ["a", "b"],
            "settings": {"auto_pretrain": False, "auto_embed": False, "audit_fraction": audit_fraction}}
    pid = admin.post("/projects", json=body).json()["id"]
    # One sample in 20 joins the audit pool at random: import until at least 3 have, more than a first
    # page's quota holds when that quota is 0 (and as CI's short page had).
    n, offset = 0, 0
    while n < 40 or _audit_count(admin, pid) < 3:
        assert upload(admin, pid, [(nm, d) for nm, d, _ in digits_pngs(20, offset)]).status_code == 201
        n, offset = n + 20, offset + 20
        assert n <= 400, "the audit pool stayed under 3 samples in 400 imports"
    audits, page = _audit_count(admin, pid), min(n, 100)
    first = admin.post(f"/projects/{pid}/queue/lease", params={"limit": page}).json()["items"]
    assert len(first) == page, f"a page of {page} held {len(first)} of {n} free samples ({audits} in the audit pool)"
    served = first
    while True:
        r = admin.post(f"/projects/{pid}/labels", json=[{"sample_id": i["sample_id"], "label": "a"} for i in served])
        assert r.status_code == 201, r.text
        served = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 100}).json()["items"]
        if not served:
            break
    left = admin.get(f"/projects/{pid}/samples", params={"status": "unlabelled"}).json()["items"]
    assert left == [], f"the queue ended with {len(left)} samples unlabelled"
