"""Shared fixtures: real databases (SQLite, PostgreSQL), a real broker, real images.

Services that are absent make their tests skip with the reason, unless LOUPE_REQUIRE_SERVICES=1 (as
in CI), where their absence is an error.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
PG_ADMIN_URL = os.environ.get("LOUPE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LOUPE_TEST_REDIS", "redis://127.0.0.1:6379")
REQUIRE = os.environ.get("LOUPE_REQUIRE_SERVICES") == "1"
ADMIN_PASSWORD = "admin-password-1"


def pytest_collection_modifyitems(config, items) -> None:
    """Groups for pytest-xdist's ``--dist loadgroup`` (what ``make test`` runs): a module's tests stay on
    one worker (its module-scoped fixtures are made once), and every browser test goes to one worker
    (one server and one Chromium for all of them: tests/frontend/conftest.py). A test's own
    ``xdist_group`` mark wins."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        path = item.path.relative_to(ROOT)
        group = "browser" if path.parts[:2] == ("tests", "frontend") else path.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))


def need(service: str, reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{service} is required (LOUPE_REQUIRE_SERVICES=1) but unavailable: {reason}")
    pytest.skip(f"{service} unavailable: {reason}")


# ---------------------------------------------------------------- password hashing

# argon2id at its production cost is about half a second of CPU a hash or check (0.8 s on a busy 2-core
# machine), and most tests create an admin and sign in (two of them) before they start. In this process
# the tests hash with argon2id at its lowest cost; the code path is the same (slots, niced threads, the
# one lane), only the cost parameters differ. A test about the cost itself (the sign-in budget, the one
# lane) is marked ``real_password_cost``. Servers and workers in subprocesses keep the production cost.
QUICK_ARGON2 = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@pytest.fixture(autouse=True)
def quick_password_hashes(request) -> Iterator[None]:
    if request.node.get_closest_marker("real_password_cost"):
        yield
        return
    from argon2 import PasswordHasher

    from app import security

    real = security._hasher
    security._hasher = PasswordHasher(**QUICK_ARGON2)
    try:
        yield
    finally:
        security._hasher = real


# ---------------------------------------------------------------- databases


def _migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "head")


def _pg_admin_engine():
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated once; each test gets a copy (CREATE DATABASE ... TEMPLATE)."""
    from sqlalchemy import text

    try:
        engine = _pg_admin_engine()
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        need("PostgreSQL", str(exc).splitlines()[0])
    name = f"loupe_tmpl_{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    _migrate(f"{base}/{name}")
    yield name
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "template.db"
    _migrate(f"sqlite:///{path}")
    return path


@contextmanager
def fresh_database(kind: str, tmp_path: Path, request) -> Iterator[str]:
    if kind == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        path = tmp_path / "loupe.db"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return
    from sqlalchemy import text

    template = request.getfixturevalue("pg_template")
    name = f"loupe_t_{uuid.uuid4().hex[:10]}"
    engine = _pg_admin_engine()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        from app.db import get_engine

        get_engine.cache_clear()
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path) -> Iterator[str]:
    with fresh_database(request.param, tmp_path, request) as url:
        yield url


@pytest.fixture
def sqlite_url(request, tmp_path) -> Iterator[str]:
    with fresh_database("sqlite", tmp_path, request) as url:
        yield url


# ---------------------------------------------------------------- broker


REDIS_CLAIM_S = 900  # a claim outlives any test; a crashed run's claims expire by themselves


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database (1-15) of this test's own, flushed. Claimed with SET NX in database 0, so tests
    running at the same time (pytest-xdist workers, another checkout's suite) never share one."""
    import redis

    try:
        claims = redis.Redis.from_url(f"{REDIS_URL}/0", socket_connect_timeout=2)
        claims.ping()
    except Exception as exc:  # noqa: BLE001
        need("Redis", str(exc))
    token, first = uuid.uuid4().hex, os.getpid() % 15
    deadline = time.monotonic() + 120
    while True:
        db = next((1 + (first + i) % 15 for i in range(15)
                   if claims.set(f"loupe-test-db:{1 + (first + i) % 15}", token, nx=True, ex=REDIS_CLAIM_S)), None)
        if db is not None:
            break
        if time.monotonic() > deadline:
            pytest.fail("every Redis test database (1-15) stayed claimed for 120 s")
        time.sleep(0.5)
    url = f"{REDIS_URL}/{db}"
    redis.Redis.from_url(url, socket_connect_timeout=2).flushdb()
    try:
        yield url
    finally:
        if claims.get(f"loupe-test-db:{db}") == token.encode():
            claims.delete(f"loupe-test-db:{db}")
        claims.close()


# ---------------------------------------------------------------- app and clients


def make_settings(tmp_path: Path, db_url: str, broker_url: str | None = None, **extra):
    from app.settings import Settings

    return Settings(
        environment="test",
        var_dir=tmp_path,
        database_url=db_url,
        broker_url=broker_url or f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        media_dir=tmp_path / "media",
        **extra,
    )


def settings_env(settings) -> dict[str, str]:
    """The environment a worker or CLI subprocess needs to see the same settings."""
    env = dict(os.environ)
    env.update(
        LOUPE_ENVIRONMENT="test",
        LOUPE_VAR_DIR=str(settings.var_dir),
        LOUPE_DATABASE_URL=settings.database_url,
        LOUPE_BROKER_URL=settings.broker_url,
        LOUPE_MEDIA_DIR=str(settings.media_dir),
        LOUPE_JOB_STALE_SECONDS=str(settings.job_stale_seconds),
    )
    return env


@pytest.fixture
def settings(tmp_path, db_url):
    return make_settings(tmp_path, db_url)


@pytest.fixture
def use_settings(settings, monkeypatch):
    """Point the process-wide settings (used by worker code run in-process) at this test's."""
    from app.settings import get_settings

    for key, value in settings_env(settings).items():
        if key.startswith("LOUPE_"):
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield settings
    get_settings.cache_clear()


class Api:
    """A TestClient bound to one user's token."""

    def __init__(self, client, token: str | None = None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def __getattr__(self, method):
        def call(url, **kw):
            headers = {**self.headers, **kw.pop("headers", {})}
            return getattr(self.client, method)("/api/v1" + url, headers=headers, **kw)

        return call

    def login_as(self, username: str, password: str) -> Api:
        r = self.client.post("/api/v1/auth/login", json={"username": username, "password": password})
        assert r.status_code == 200, r.text
        # The client is shared by every Api of a test: keep the browser cookie out of the others' calls.
        self.client.cookies.clear()
        return Api(self.client, r.json()["token"])

    def new_user(self, username: str, password: str = "user-password-1", is_admin: bool = False) -> Api:
        r = self.post("/users", json={"username": username, "password": password, "is_admin": is_admin})
        assert r.status_code == 201, r.text
        return self.login_as(username, password)


@contextmanager
def served(settings) -> Iterator:
    """The app on ``settings`` with its ``admin`` account, as a TestClient."""
    from fastapi.testclient import TestClient

    from app.db import session_scope
    from app.main import create_app
    from app.services.auth import create_user

    with session_scope(settings.database_url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)
    with TestClient(create_app(settings)) as client:
        yield client


@contextmanager
def worker_app(tmp_path: Path, db_url: str) -> Iterator[tuple]:
    """(settings, admin's Api) for a test that runs a real worker beside the app: stale jobs are swept
    after 4 s, so a killed worker's job is seen in a test's time."""
    settings = make_settings(tmp_path, db_url, job_stale_seconds=4)
    with served(settings) as client:
        yield settings, Api(client).login_as("admin", ADMIN_PASSWORD)


@pytest.fixture
def app_client(settings):
    with served(settings) as client:
        yield client


@pytest.fixture
def anon(app_client) -> Api:
    return Api(app_client)


@pytest.fixture
def admin(anon) -> Api:
    return anon.login_as("admin", ADMIN_PASSWORD)


# ---------------------------------------------------------------- real images


def digits_pngs(n: int = 60, offset: int = 0) -> list[tuple[str, bytes, str]]:
    """(filename, PNG bytes, true class) from scikit-learn's bundled handwritten digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    out = []
    for i in range(offset, offset + n):
        buf = io.BytesIO()
        Image.fromarray((d.images[i] * (255 / 16)).astype(np.uint8), "L").save(buf, "PNG")
        out.append((f"digit_{i:04d}.png", buf.getvalue(), str(d.target[i])))
    return out


def imagefolder_zip(items: list[tuple[str, bytes, str]], root: str = "digits") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, cls in items:
            zf.writestr(f"{root}/{cls}/{name}", data)
    return buf.getvalue()


@pytest.fixture
def digits_project(admin) -> dict:
    # No automatic jobs: these tests run without a worker and look at the API alone.
    r = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                      "settings": {"auto_pretrain": False, "auto_embed": False}})
    assert r.status_code == 201, r.text
    return r.json()


def upload(api: Api, pid: int, files: list[tuple[str, bytes]]):
    return api.post(f"/projects/{pid}/samples", files=[("files", (n, d)) for n, d in files])


# ---------------------------------------------------------------- a real worker process


def stop_process(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """SIGTERM (a worker finishes its warm shutdown), then SIGKILL if it does not end in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_worker(settings, timeout: float = 90.0, queues: str = "gpu,cpu,long") -> Iterator[subprocess.Popen]:
    """A Celery worker on the test's settings, at the test's own niceness: a worker yields the CPU to the
    API (worker_nice, held by tests/scheduling/test_short_jobs_first.py under ``loupe serve``), and here
    that would also yield it to the other xdist worker's test, starving this test's jobs."""
    log = Path(settings.var_dir) / f"worker-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", queues, "--pool", "solo",
             "-c", "1", "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=settings_env(settings) | {"LOUPE_WORKER_NICE": "0"}, stdout=fh, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while b" ready." not in log.read_bytes():
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited: {log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker not ready in {timeout}s: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        proc.log_path = log  # type: ignore[attr-defined]
        yield proc
    finally:
        stop_process(proc)


def wait_for_job(api: Api, job_id: int, timeout: float = 120.0, states=("succeeded", "failed", "cancelled")) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = api.get(f"/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']} after {timeout}s: {job}")
        time.sleep(0.3)


# ---------------------------------------------------------------- a real HTTP server


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    """Wait for a server process's health route; raise with its log if it exits or stays silent."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"server did not start: {log.read_text()[-3000:]}")
        time.sleep(0.2)


@contextmanager
def live_server(settings, timeout: float = 60.0) -> Iterator[str]:
    """uvicorn serving the app in its own process, for tests with real concurrent HTTP clients."""
    port = free_port()
    log = Path(settings.var_dir) / f"server-{port}.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env=settings_env(settings), stdout=fh, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc, log, timeout)
        yield url
    finally:
        stop_process(proc)
