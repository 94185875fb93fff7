"""The queue leases only on a POST (issue 16, item 8): a GET reads what the caller holds and leases
nothing, so a link or an <img> on another site cannot lease samples with the annotator's cookie; the
POST follows the cookie rule of every other write (the CSRF header)."""

from __future__ import annotations

from tests.conftest import digits_pngs, upload

N = 6


def _project_with_annotator(admin) -> int:
    pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                        "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(N)]).status_code == 201
    admin.new_user("alice", "alice-password-1")
    assert admin.post(f"/projects/{pid}/members", json={"username": "alice", "role": "annotator"}).status_code == 201
    return pid


def _sign_in_by_cookie(client) -> str:
    r = client.post("/api/v1/auth/login", json={"username": "alice", "password": "alice-password-1"})
    assert r.status_code == 200, r.text
    return client.cookies.get("loupe_csrf")


def test_a_get_of_the_queue_with_the_cookie_leases_nothing(admin, app_client):
    pid = _project_with_annotator(admin)
    _sign_in_by_cookie(app_client)
    r = app_client.get(f"/api/v1/projects/{pid}/queue", params={"limit": 100})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []
    # Nothing was leased to alice: another annotator is served every sample.
    served = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 100})
    assert served.status_code == 200, served.text
    assert len(served.json()["items"]) == N


def test_leasing_by_cookie_needs_the_csrf_header_and_a_get_then_shows_the_leases(admin, app_client):
    pid = _project_with_annotator(admin)
    csrf = _sign_in_by_cookie(app_client)
    url = f"/api/v1/projects/{pid}/queue/lease"
    r = app_client.post(url, params={"limit": 3})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    assert app_client.get(f"/api/v1/projects/{pid}/queue").json()["items"] == []  # the refusal leased nothing
    r = app_client.post(url, params={"limit": 3}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    leased = {i["sample_id"]: i["lease_expires_at"] for i in r.json()["items"]}
    assert len(leased) == 3
    # The GET shows what alice holds, with its suggestion fields, and renews nothing.
    held = app_client.get(f"/api/v1/projects/{pid}/queue", params={"limit": 100}).json()["items"]
    assert {i["sample_id"]: i["lease_expires_at"] for i in held} == leased
    assert {"image_url", "suggestion", "reason", "is_audit"} <= set(held[0])
    # Another client (tab) of alice holds none of them.
    other_tab = app_client.get(f"/api/v1/projects/{pid}/queue", headers={"X-Loupe-Client": "tab-2"})
    assert other_tab.json()["items"] == []
    assert len(admin.post(f"/projects/{pid}/queue/lease", params={"limit": 100}).json()["items"]) == N - 3


def test_a_viewer_neither_leases_nor_reads_the_queue(admin, anon):
    pid = _project_with_annotator(admin)
    viewer = admin.new_user("victor", "victor-password-1")
    admin.post(f"/projects/{pid}/members", json={"username": "victor", "role": "viewer"})
    assert viewer.post(f"/projects/{pid}/queue/lease").status_code == 403
    assert viewer.get(f"/projects/{pid}/queue").status_code == 403
