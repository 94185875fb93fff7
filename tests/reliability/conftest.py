"""Fixtures for the reliability suite: a real HTTP server in its own process, and private PostgreSQL
and Redis instances this suite may stop and start without disturbing anyone else's tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_PASSWORD, ROOT, need, settings_env

PG_BIN = Path(os.environ.get("LOUPE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- a live server


def create_admin(settings) -> None:
    from app.db import session_scope
    from app.services.auth import create_user

    with session_scope(settings.database_url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)


class LiveServer:
    def __init__(self, proc: subprocess.Popen, url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def token(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        r = httpx.post(f"{self.url}/api/v1/auth/login", json={"username": username, "password": password}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()["token"]

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", headers={"Authorization": f"Bearer {self.token()}"},
                            timeout=kw.pop("timeout", 30), **kw)


@contextmanager
def live_server(settings, extra_env: dict[str, str] | None = None, workers: int = 1) -> Iterator[LiveServer]:
    """uvicorn in a subprocess, configured through the environment like production."""
    port = free_port()
    log = Path(settings.var_dir) / f"server-{uuid.uuid4().hex[:6]}.log"
    env = settings_env(settings) | (extra_env or {})
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/api/v1/health", timeout=5).status_code in (200, 503)
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 60, "the server to answer")
        yield LiveServer(proc, url, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---------------------------------------------------------------- a private PostgreSQL


class PrivatePostgres:
    """initdb + pg_ctl on a temp dir and a free port, run as the postgres OS user when we are root."""

    def __init__(self, datadir: Path, port: int) -> None:
        self.datadir, self.port = datadir, port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=60)

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.datadir), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8")
        with (self.datadir / "postgresql.conf").open("a") as fh:
            fh.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.datadir}'\n"
                     "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n")

    def start(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.datadir / "log"), "-w",
                  "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

    def database(self, name: str | None = None) -> str:
        """A fresh, migrated database on this instance."""
        from sqlalchemy import create_engine, text

        from tests.conftest import _migrate

        name = name or f"loupe_{uuid.uuid4().hex[:8]}"
        engine = create_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        url = self.url.rsplit("/", 1)[0] + f"/{name}"
        _migrate(url)
        return url


@pytest.fixture(scope="session")
def private_pg() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        need("PostgreSQL binaries", f"no initdb under {PG_BIN}")
    base = Path(tempfile.mkdtemp(prefix="loupe-pg-"))
    datadir = base / "data"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    pg = PrivatePostgres(datadir, free_port())
    try:
        pg.init()
        pg.start()
    except (subprocess.CalledProcessError, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        need("a private PostgreSQL", getattr(exc, "stderr", None) or str(exc))
    yield pg
    pg.stop("immediate")
    shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- a private Redis


class PrivateRedis:
    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        def answers() -> bool:
            try:
                return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
            except redis.RedisError:
                return False

        wait_until(answers, 15, "the private redis to answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # no goodbye: the broker just vanishes
            self.proc.wait()
        self.proc = None


@pytest.fixture
def private_redis(tmp_path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        need("Redis", "no redis-server binary to start a private instance")
    r = PrivateRedis(free_port(), tmp_path)
    r.start()
    yield r
    r.stop()


def media_files(settings) -> list[Path]:
    root = Path(settings.media_dir)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
