"""Engine and session factory. SQLite gets the pragmas that make it safe under concurrent writers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def private_sqlite_file(url: str) -> None:
    """Create a SQLite database file that does not exist yet readable by its owner only (0600; SQLite
    gives its -wal and -shm files the same mode), rather than under the umask (often world-readable).
    Its folder is made too. Not a file (``:memory:``), or not SQLite: nothing to do."""
    if not is_sqlite(url):
        return
    path = make_url(url).database
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    file = Path(path)
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(file, os.O_CREAT | os.O_WRONLY, 0o600))


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    if is_sqlite(url):
        private_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # WAL lets readers proceed while one writer commits; busy_timeout queues writers instead of
            # failing them at once.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # Let SQLAlchemy, not pysqlite, emit BEGIN (see the "begin" listener below).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Take the write lock up front: a deferred transaction that later upgrades to a writer can
            # deadlock with another one and fail with "database is locked" despite busy_timeout.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache(maxsize=8)
def get_sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the session's transaction has committed (never if it rolls back).

    Tasks are queued this way so a worker never looks for a row that is not committed yet.
    """
    session.info.setdefault("after_commit", []).append(callback)


def on_rollback(session: Session, callback: Callable[[], None]) -> None:
    """Undo a side effect outside the database (a stored file) if the transaction rolls back."""
    session.info.setdefault("on_rollback", []).append(callback)


def run_after_commit(session: Session) -> None:
    session.info.pop("on_rollback", None)
    callbacks = session.info.pop("after_commit", [])
    for cb in callbacks:
        cb()


def run_on_rollback(session: Session) -> None:
    session.info.pop("after_commit", None)
    for cb in reversed(session.info.pop("on_rollback", [])):
        cb()


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A unit of work for the CLI and the workers: commit on success, roll back on error."""
    session = get_sessionmaker(url)()
    try:
        yield session
        session.commit()
        run_after_commit(session)
    except BaseException:
        session.rollback()
        run_on_rollback(session)
        raise
    finally:
        session.close()
