"""Login, accounts, projects and membership through the REST API, on SQLite and PostgreSQL."""

from __future__ import annotations


def test_health_reports_database_and_broker(anon):
    r = anon.get("/health")
    assert r.status_code == 200
    assert r.json()["database"] == "ok"
    assert r.json()["broker"] in ("ok", "unavailable")


def test_login_gives_a_token_and_wrong_password_is_401(anon):
    r = anon.post("/auth/login", json={"username": "admin", "password": "wrong"})
    assert r.status_code == 401
    assert "wrong username or password" in r.json()["detail"]
    r = anon.post("/auth/login", json={"username": "admin", "password": "admin-password-1"})
    assert r.status_code == 200
    assert r.json()["token"].startswith("lp_")
    assert "admin-password-1" not in r.text


def test_routes_need_a_token(anon, admin):
    assert anon.get("/projects").status_code == 401
    bad = anon.get("/projects", headers={"Authorization": "Bearer lp_not-a-token"})
    assert bad.status_code == 401
    assert admin.get("/projects").status_code == 200


def test_logout_revokes_the_token(admin):
    assert admin.post("/auth/logout").status_code == 204
    assert admin.get("/projects").status_code == 401


def test_admin_creates_users_and_others_cannot(admin):
    alice = admin.new_user("alice")
    assert alice.get("/auth/me").json()["username"] == "alice"
    r = alice.post("/users", json={"username": "mallory", "password": "password-123"})
    assert r.status_code == 403
    dup = admin.post("/users", json={"username": "alice", "password": "password-123"})
    assert dup.status_code == 409
    short = admin.post("/users", json={"username": "bob", "password": "Zq7!x"})
    assert short.status_code == 422
    assert "Zq7!x" not in short.text  # the password is never echoed back


def test_project_create_list_counts_and_visibility(admin, digits_project):
    from tests.conftest import digits_pngs, upload

    pid = digits_project["id"]
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(5)]).status_code == 201
    listed = admin.get("/projects").json()
    assert [(p["name"], p["sample_count"], p["labelled_count"]) for p in listed] == [("digits", 5, 0)]

    alice = admin.new_user("alice")
    assert alice.get("/projects").json() == []
    assert alice.get(f"/projects/{pid}").status_code == 404  # not a member: it does not exist for her
    r = admin.post(f"/projects/{pid}/members", json={"username": "alice", "role": "viewer"})
    assert r.status_code == 201
    assert alice.get(f"/projects/{pid}").json()["role"] == "viewer"
    assert alice.post(f"/projects/{pid}/labels", json={"sample_id": 1, "label": "1"}).status_code == 403
    assert admin.post(f"/projects/{pid}/members", json={"username": "nobody", "role": "viewer"}).status_code == 404


def test_project_validation(admin):
    assert admin.post("/projects", json={"name": "x", "classes": []}).status_code == 422
    r = admin.post("/projects", json={"name": "x", "classes": ["a", "a"]})
    assert r.status_code == 422 and "repeated" in r.json()["detail"]
    assert admin.post("/projects", json={"name": "x", "classes": ["a"]}).status_code == 201
    assert admin.post("/projects", json={"name": "x", "classes": ["a"]}).status_code == 409
    assert admin.get("/projects/999").status_code == 404
