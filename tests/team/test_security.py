"""Who may do what: tokens, cookies and CSRF, roles, other projects' ids, secrets never echoed."""

from __future__ import annotations

import logging

from tests.conftest import ADMIN_PASSWORD, digits_pngs, upload


def _project(admin, name="p"):
    pid = admin.post("/projects", json={"name": name, "classes": ["a", "b"],
                                        "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
    upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(4, offset=10 * len(name))])
    return pid, [s["id"] for s in admin.get(f"/projects/{pid}/samples").json()["items"]]


def test_api_tokens_are_shown_once_listed_without_secret_and_revocable(admin, anon):
    alice = admin.new_user("alice")
    r = alice.post("/tokens", json={"name": "ci-script"})
    assert r.status_code == 201
    token = r.json()["token"]
    script = anon.__class__(anon.client, token)
    assert script.get("/auth/me").json()["username"] == "alice"
    listed = alice.get("/tokens").json()
    assert [t["name"] for t in listed] == ["ci-script"] and all("token" not in t for t in listed)
    assert token not in alice.get("/tokens").text
    # Another user cannot see or revoke it; an admin can.
    bob = admin.new_user("bob")
    assert bob.delete(f"/tokens/{listed[0]['id']}").status_code == 404
    assert any(t["username"] == "alice" for t in admin.get("/tokens", params={"all": True}).json())
    assert alice.delete(f"/tokens/{listed[0]['id']}").status_code == 204
    assert script.get("/auth/me").status_code == 401
    # Admins make tokens for integrations' accounts; others cannot.
    assert admin.post("/tokens", json={"name": "x", "username": "bob"}).status_code == 201
    assert alice.post("/tokens", json={"name": "x", "username": "bob"}).status_code == 403


def test_tokens_are_stored_hashed(admin, settings):
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import ApiToken

    token = admin.post("/tokens", json={"name": "t"}).json()["token"]
    with session_scope(settings.database_url) as s:
        stored = list(s.scalars(select(ApiToken.token_hash)))
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_cookie_session_needs_the_csrf_header_for_writes(app_client):
    r = app_client.post("/api/v1/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert "httponly" in r.headers["set-cookie"].lower() and "samesite=lax" in r.headers["set-cookie"].lower()
    assert app_client.get("/api/v1/projects").status_code == 200  # the cookie alone reads
    body = {"name": "x", "classes": ["a"]}
    assert app_client.post("/api/v1/projects", json=body).status_code == 403  # a forged cross-site write
    csrf = app_client.cookies.get("loupe_csrf")
    assert app_client.post("/api/v1/projects", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201


def test_roles_and_other_projects(admin):
    pid, sids = _project(admin, "mine")
    other_pid, other_sids = _project(admin, "other")
    ann = admin.new_user("ann")
    viewer = admin.new_user("vic")
    admin.post(f"/projects/{pid}/members", json={"username": "ann", "role": "annotator"})
    admin.post(f"/projects/{pid}/members", json={"username": "vic", "role": "viewer"})

    # Another project's ids: 404, never a hint that they exist.
    for path in (f"/projects/{other_pid}", f"/projects/{other_pid}/queue", f"/samples/{other_sids[0]}/image",
                 f"/projects/{other_pid}/export", f"/samples/{other_sids[0]}"):
        assert ann.get(path).status_code == 404, path
    assert ann.post(f"/projects/{pid}/labels", json={"sample_id": other_sids[0], "label": "a"}).status_code == 404
    assert [p["id"] for p in ann.get("/projects").json()] == [pid]

    # Annotators label but run nothing and change nothing: 403.
    assert ann.post(f"/projects/{pid}/labels", json={"sample_id": sids[0], "label": "a"}).status_code == 201
    assert ann.post(f"/projects/{pid}/jobs", json={"kind": "train"}).status_code == 403
    assert ann.patch(f"/projects/{pid}", json={"settings": {"retrain_every": 5}}).status_code == 403
    assert ann.post(f"/projects/{pid}/members", json={"username": "vic", "role": "annotator"}).status_code == 403
    assert ann.post("/users", json={"username": "eve", "password": "password-1"}).status_code == 403
    # Viewers read only.
    assert viewer.get(f"/projects/{pid}/export").status_code == 200
    assert viewer.post(f"/projects/{pid}/labels", json={"sample_id": sids[1], "label": "a"}).status_code == 403
    assert viewer.get(f"/projects/{pid}/queue").status_code == 403
    # Access taken away: the project is gone for them.
    assert admin.delete(f"/projects/{pid}/members/vic").status_code == 204
    assert viewer.get(f"/projects/{pid}").status_code == 404
    assert admin.delete(f"/projects/{pid}/members/vic").status_code == 404


def test_passwords_never_appear_in_responses_or_logs(anon, admin, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "Very-Secret-Passw0rd"
    r = admin.post("/users", json={"username": "carol", "password": secret})
    assert r.status_code == 201 and secret not in r.text
    assert secret not in anon.post("/auth/login", json={"username": "carol", "password": secret + "x"}).text
    bad = admin.post("/users", json={"username": "bad name!", "password": secret})
    assert bad.status_code == 422 and secret not in bad.text
    assert secret not in caplog.text
    assert "password" not in admin.get("/users").text.replace('"password_hash"', "")


def test_idempotency_key_replays_and_creates_nothing_new(admin):
    pid, sids = _project(admin)
    body = [{"sample_id": sids[0], "label": "a"}, {"sample_id": sids[1], "label": "b"}]
    first = admin.post(f"/projects/{pid}/labels", json=body, headers={"Idempotency-Key": "batch-7"})
    for _ in range(3):
        again = admin.post(f"/projects/{pid}/labels", json=body, headers={"Idempotency-Key": "batch-7"})
        assert again.json() == first.json()
    assert len(admin.get(f"/samples/{sids[0]}/labels").json()) == 1
    assert admin.get(f"/projects/{pid}/activity").json()["annotators"][0]["labels"] == 2
