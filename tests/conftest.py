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


def need(service: str, reason: str) -> None:
    if REQUIRE:
        pytest.fail(f"{service} is required (LOUPE_REQUIRE_SERVICES=1) but unavailable: {reason}")
    pytest.skip(f"{service} unavailable: {reason}")


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


@pytest.fixture
def redis_url() -> str:
    import redis

    db = 1 + (os.getpid() + int(time.time())) % 14
    url = f"{REDIS_URL}/{db}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.flushdb()
    except Exception as exc:  # noqa: BLE001
        need("Redis", str(exc))
    return url


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


@pytest.fixture
def app_client(settings):
    from fastapi.testclient import TestClient

    from app.db import session_scope
    from app.main import create_app
    from app.services.auth import create_user

    with session_scope(settings.database_url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)
    with TestClient(create_app(settings)) as client:
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
    log = Path(settings.var_dir) / f"worker-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-Q", queues, "--pool", "solo",
             "-c", "1", "-l", "info", "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=settings_env(settings), stdout=fh, stderr=subprocess.STDOUT,
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
