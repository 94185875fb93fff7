"""Two requests racing for one unique name (an account, a project): one wins, the other answers 409 with
a message, on SQLite and PostgreSQL. On PostgreSQL both pass the service's name check before either
inserts (an account's password hash takes a moment), so the unique index decides: that answered 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def _race(call, n: int = 4) -> list:
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: call(), range(n)))


def test_accounts_racing_for_one_username(admin):
    answers = _race(lambda: admin.post("/users", json={"username": "twin", "password": "twin-password-1"}))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409, 409, 409], [r.text for r in answers]
    assert all(r.json()["detail"] for r in answers if r.status_code == 409)
    assert [u["username"] for u in admin.get("/users").json()].count("twin") == 1


def test_projects_racing_for_one_name(admin):
    answers = _race(lambda: admin.post("/projects", json={"name": "twin", "classes": ["a", "b"]}))
    codes = sorted(r.status_code for r in answers)
    assert codes == [201, 409, 409, 409], [r.text for r in answers]
    assert [p["name"] for p in admin.get("/projects").json()].count("twin") == 1
