"""Sign-in throttling (issue 16, item 5): failures counted per account and per client address, 429 with
Retry-After, counters shared by every API process of a deployment, and a bounded argon2 budget."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_PASSWORD, make_settings

# What these tests hold (a throttled attempt costs no hash, one lane, niced threads) is about argon2's
# real cost: not the quick hashes the other tests use.
pytestmark = pytest.mark.real_password_cost

WINDOW_S = 20  # long enough for a busy machine's argon2 checks (5 of them, seconds each under load) to stay inside it


def _login(client, username: str, password: str):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


@pytest.fixture
def throttled(tmp_path, db_url):
    from app.db import session_scope
    from app.main import create_app
    from app.services.auth import create_user

    settings = make_settings(tmp_path, db_url, login_window_s=WINDOW_S, login_failures_per_account=5,
                             login_failures_per_address=8)
    with session_scope(settings.database_url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)
        create_user(s, "carol", "carol-password-1")
    with TestClient(create_app(settings)) as client:
        yield client


def test_wrong_passwords_are_throttled_and_the_right_one_works_after_the_window(throttled):
    codes, throttled_s = [], 0.0
    first = time.monotonic()
    for _ in range(100):
        started = time.monotonic()
        r = _login(throttled, "carol", "wrong-password")
        codes.append(r.status_code)
        if r.status_code == 429:
            throttled_s += time.monotonic() - started
            assert int(r.headers["retry-after"]) >= 1
            assert "sign-in attempts for this account" in r.json()["detail"]
    assert codes[:5] == [401] * 5
    assert set(codes[5:]) == {429}
    # A throttled attempt costs no password hash: 95 of them take less than a few argon2 checks.
    assert throttled_s < 5.0
    # Locked for now, the right password included; after the window it works.
    assert time.monotonic() - first < WINDOW_S, "the machine is too slow for this window: the lock ran out"
    assert _login(throttled, "carol", "carol-password-1").status_code == 429
    time.sleep(WINDOW_S + 0.5)
    assert _login(throttled, "carol", "carol-password-1").status_code == 200


def test_one_address_trying_many_accounts_is_throttled(throttled):
    codes = [_login(throttled, f"user{i}", "wrong-password").status_code for i in range(12)]
    assert codes[:8] == [401] * 8 and set(codes[8:]) == {429}
    r = _login(throttled, "admin", ADMIN_PASSWORD)
    assert r.status_code == 429 and "for this address" in r.json()["detail"]


def test_counters_are_shared_by_api_processes_on_redis(tmp_path, db_url, redis_url):
    """Two apps (two API processes) with one Redis broker count one account's failures together."""
    from app.db import session_scope
    from app.main import create_app
    from app.services.auth import create_user

    settings = make_settings(tmp_path, db_url, broker_url=redis_url, login_window_s=WINDOW_S,
                             login_failures_per_account=4)
    with session_scope(settings.database_url) as s:
        create_user(s, "dave", "dave-password-1")
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        assert [_login(one, "dave", "nope-nope").status_code for _ in range(2)] == [401, 401]
        assert [_login(two, "dave", "nope-nope").status_code for _ in range(3)] == [401, 401, 429]
        assert _login(one, "dave", "dave-password-1").status_code == 429


def test_password_checks_wait_for_a_bounded_budget(throttled):
    """While every argon2 slot is taken, a sign-in waits briefly, then answers 429 instead of queueing."""
    from app import security

    taken = [security.HASH_SLOTS.acquire(timeout=5) for _ in range(security.HASH_SLOT_COUNT)]
    assert all(taken)
    try:
        r = _login(throttled, "admin", ADMIN_PASSWORD)
    finally:
        for _ in taken:
            security.HASH_SLOTS.release()
    assert r.status_code == 429 and "retry-after" in r.headers
    assert _login(throttled, "admin", ADMIN_PASSWORD).status_code == 200


def test_a_throttled_password_change_says_when_to_try_again(throttled):
    """A wrong current password counts as a failed sign-in; past the limit the change answers 429 with
    Retry-After, as the sign-in does (it answered a bare 429 before)."""
    token = _login(throttled, "carol", "carol-password-1").json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    body = {"current_password": "not-my-password", "new_password": "carol-password-2"}
    codes = [throttled.post("/api/v1/users/me/password", json=body, headers=auth) for _ in range(6)]
    assert [r.status_code for r in codes[:4]] == [403] * 4  # a wrong current password
    last = codes[-1]
    assert last.status_code == 429, last.text
    assert int(last.headers["retry-after"]) >= 1


def test_a_password_check_keeps_to_one_core():
    """The hashing budget counts slots of one core each, so a hash runs one argon2 lane (one thread; the
    library's default of four ran on up to four threads); a hash made with four lanes still verifies."""
    from argon2 import PasswordHasher

    from app import security

    assert security.hash_password("one-lane-password").split("$")[3].endswith("p=1")
    assert security.verify_password(PasswordHasher().hash("four-lane-password"), "four-lane-password")


def test_password_checks_run_at_a_lower_os_priority():
    """A check's core goes to any other call that wants it: the hashing thread is niced (Linux)."""
    import os
    import threading

    from app import security

    security.hash_password("niced-password")
    hashers = [t for t in threading.enumerate() if t.name.startswith("argon2")]
    assert hashers, "no hashing thread"
    for t in hashers:
        assert os.getpriority(os.PRIO_PROCESS, t.native_id) > os.getpriority(os.PRIO_PROCESS, 0)
