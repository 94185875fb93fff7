"""Accounts (issue 16, item 7): a reset revokes sessions and tokens, API tokens may expire, admins
deactivate users (at once, on the hot routes too), users change their own password."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from tests.conftest import ROOT, settings_env


def _as(anon, token):
    return anon.__class__(anon.client, token)


def _user_id(admin, username):
    return next(u["id"] for u in admin.get("/users").json() if u["username"] == username)


def test_a_password_reset_revokes_sessions_and_api_tokens(admin, anon, settings):
    alice = admin.new_user("alice", "alice-password-1")
    script = _as(anon, alice.post("/tokens", json={"name": "ci"}).json()["token"])
    assert script.get("/auth/me").status_code == 200
    subprocess.run([sys.executable, "-m", "app.cli", "reset-password", "alice", "--password", "a-new-password"],
                   cwd=ROOT, env=settings_env(settings), check=True, capture_output=True)
    for old in (alice, script):
        r = old.get("/auth/me")
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
    assert anon.login_as("alice", "a-new-password").get("/auth/me").status_code == 200


def test_an_admin_reset_over_rest_revokes_too(admin, anon):
    bob = admin.new_user("bob", "bob-password-1")
    r = admin.patch(f"/users/{_user_id(admin, 'bob')}", json={"password": "bob-password-2"})
    assert r.status_code == 200, r.text
    assert bob.get("/auth/me").status_code == 401
    assert anon.login_as("bob", "bob-password-2").get("/auth/me").status_code == 200


def test_api_tokens_may_expire(admin, anon):
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    r = admin.post("/tokens", json={"name": "short", "expires_at": soon})
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"] is not None
    short = _as(anon, r.json()["token"])
    assert short.get("/auth/me").status_code == 200
    import time

    time.sleep(2.5)
    r = short.get("/auth/me")
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert admin.post("/tokens", json={"name": "past", "expires_at": past}).status_code == 422
    assert [t["expires_at"] is not None for t in admin.get("/tokens").json()] == [True]


def test_admins_deactivate_users_and_their_tokens_stop_at_once(admin, anon):
    carol = admin.new_user("carol", "carol-password-1")
    pid = admin.post("/projects", json={"name": "p", "classes": ["a", "b"],
                                        "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
    admin.post(f"/projects/{pid}/members", json={"username": "carol", "role": "annotator"})
    script = _as(anon, carol.post("/tokens", json={"name": "ci"}).json()["token"])
    assert script.get(f"/projects/{pid}/queue").status_code == 200
    uid = _user_id(admin, "carol")
    assert carol.patch(f"/users/{uid}", json={"is_active": False}).status_code == 403
    r = admin.patch(f"/users/{uid}", json={"is_active": False})
    assert r.status_code == 200 and r.json()["is_active"] is False
    for who in (carol, script):
        for path in ("/auth/me", f"/projects/{pid}/queue"):  # the hot route looks tokens up its own way
            r = who.get(path)
            assert r.status_code == 401, (path, r.text)
            assert "deactivated" in r.json()["detail"] or "revoked" in r.json()["detail"]
    r = anon.post("/auth/login", json={"username": "carol", "password": "carol-password-1"})
    assert r.status_code == 401
    # An admin cannot lock themself out.
    assert admin.patch(f"/users/{_user_id(admin, 'admin')}", json={"is_active": False}).status_code == 422
    admin.patch(f"/users/{uid}", json={"is_active": True})
    assert anon.login_as("carol", "carol-password-1").get("/auth/me").status_code == 200


def test_users_change_their_own_password(admin, anon):
    dave = admin.new_user("dave", "dave-password-1")
    other_session = anon.login_as("dave", "dave-password-1")
    script = _as(anon, dave.post("/tokens", json={"name": "ci"}).json()["token"])
    wrong = dave.post("/users/me/password", json={"current_password": "nope-nope", "new_password": "dave-password-2"})
    assert wrong.status_code == 403 and "current password" in wrong.json()["detail"]
    short = dave.post("/users/me/password", json={"current_password": "dave-password-1", "new_password": "short"})
    assert short.status_code == 422
    r = dave.post("/users/me/password", json={"current_password": "dave-password-1", "new_password": "dave-password-2"})
    assert r.status_code == 204, r.text
    assert dave.get("/auth/me").status_code == 200  # the session that changed it goes on
    assert other_session.get("/auth/me").status_code == 401  # other sign-ins end
    assert script.get("/auth/me").status_code == 200  # named API tokens are managed on their own
    assert anon.post("/auth/login", json={"username": "dave", "password": "dave-password-1"}).status_code == 401
    assert anon.login_as("dave", "dave-password-2").get("/auth/me").status_code == 200
