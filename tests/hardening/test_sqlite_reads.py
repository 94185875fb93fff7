"""Issue 16, item 2: on SQLite a read does not take the write lock, so it answers while a writer (an
import) holds it; a write still queues behind the writer (busy_timeout) as before."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import make_url, text

from tests.conftest import Api, digits_pngs, make_settings


@pytest.fixture
def settings(tmp_path, sqlite_url):
    return make_settings(tmp_path, sqlite_url)


@contextmanager
def write_lock_held(url: str, seconds: float) -> Iterator[None]:
    """Another connection holds ``BEGIN IMMEDIATE`` on the database file for ``seconds``."""
    conn = sqlite3.connect(make_url(url).database, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(seconds, lambda: conn.execute("ROLLBACK"))
    timer.start()
    try:
        yield
    finally:
        timer.join()
        conn.close()


def timed(call, *args, **kw):
    start = time.monotonic()
    r = call(*args, **kw)
    return r, time.monotonic() - start


def test_reads_answer_while_another_connection_holds_the_write_lock(settings, admin: Api, digits_project):
    pid = digits_project["id"]
    token = admin.post("/tokens", json={"name": "script"}).json()["token"]
    script = Api(admin.client, token)
    with write_lock_held(settings.database_url, 3.0):
        for api, url in [(admin, "/projects"), (admin, f"/projects/{pid}"), (admin, f"/projects/{pid}/samples"),
                         (script, "/projects"), (admin, "/tokens")]:
            r, took = timed(api.get, url)
            assert r.status_code == 200, (url, r.text)
            assert took < 1.5, f"GET {url} waited {took:.1f} s for the write lock"
    # The API token's use is recorded in a short transaction of its own once the lock is free.
    script.get("/projects")
    assert admin.get("/tokens").json()[0]["last_used_at"] is not None


def test_a_write_still_waits_for_the_write_lock(settings, admin: Api):
    with write_lock_held(settings.database_url, 1.5):
        r, took = timed(admin.post, "/projects", json={"name": "later", "classes": ["a", "b"]})
    assert r.status_code == 201, r.text
    assert took >= 1.2, f"the write did not wait for the lock ({took:.2f} s)"


def test_a_write_in_a_read_only_session_fails_on_both_databases(db_url):
    from app.db import ReadOnlyWrite, session_scope
    from app.services.auth import create_user

    with pytest.raises(ReadOnlyWrite), session_scope(db_url, read_only=True) as s:
        create_user(s, "nobody", "a-password-1")
    with session_scope(db_url, read_only=True) as s:
        assert s.execute(text("SELECT count(*) FROM users WHERE username = 'nobody'")).scalar() == 0


def write_lock_free(url: str) -> bool:
    """Whether another connection could take the write lock right now (without waiting)."""
    conn = sqlite3.connect(make_url(url).database, isolation_level=None, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def test_an_import_checks_and_stores_files_without_holding_the_write_lock(settings):
    from app.db import session_scope
    from app.models import Project
    from app.services.archives import Candidate
    from app.services.imports import CHUNK, import_candidates
    from app.services.projects import create_project

    with session_scope(settings.database_url) as s:
        pid = create_project(s, "big", [str(i) for i in range(10)]).id
    images = digits_pngs(CHUNK + 20)
    free: list[bool] = []

    def candidates():
        for i, (name, data, _cls) in enumerate(images):
            if i in (10, CHUNK + 10):  # before and after a chunk of rows was ready
                free.append(write_lock_free(settings.database_url))
            yield Candidate(name, data)

    with session_scope(settings.database_url) as s:
        project = s.get(Project, pid)
        s.commit()  # as the route does after its access check
        result = import_candidates(s, project, candidates(), settings)
    assert result.created == CHUNK + 20
    assert free == [True, True], "another writer had to wait while the import checked files"
