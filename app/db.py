"""Engine and session factory. SQLite gets the pragmas that make it safe under concurrent writers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

# An engine execution option: its connections only read. On SQLite their transactions start with a
# plain (deferred) BEGIN, so they never wait for the write lock; on both databases a write statement in
# one raises ReadOnlyWrite (a route that writes on a GET must say so, see app/api/deps.get_session).
READ_ONLY = "loupe_read_only"
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


class ReadOnlyWrite(RuntimeError):
    """A write statement in a read-only transaction: a bug, found by the tests."""


def _writes(statement: str) -> bool:
    return statement.lstrip()[:7].upper().startswith(_WRITES) or " FOR UPDATE" in statement


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
            # A writer takes the write lock up front: a deferred transaction that later upgrades to a
            # writer can deadlock with another one and fail with "database is locked" despite
            # busy_timeout. A reader (READ_ONLY) never upgrades, so it begins deferred and, in WAL mode,
            # reads its snapshot while a writer holds the lock.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    @event.listens_for(engine, "before_cursor_execute")
    def _read_only_guard(conn, _cursor, statement, _parameters, _context, _executemany):
        if conn.get_execution_options().get(READ_ONLY) and _writes(statement):
            raise ReadOnlyWrite(f"a write in a read-only transaction: {statement[:80]}")

    return engine


@lru_cache(maxsize=8)
def get_read_engine(url: str) -> Engine:
    """The same engine and pool, for transactions that only read."""
    return get_engine(url).execution_options(**{READ_ONLY: True})


@lru_cache(maxsize=8)
def get_sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(url), expire_on_commit=False)


@lru_cache(maxsize=8)
def get_read_sessionmaker(url: str) -> sessionmaker[Session]:
    """Sessions that only read: on SQLite they do not wait for (or hold) the write lock."""
    return sessionmaker(bind=get_read_engine(url), expire_on_commit=False, info={READ_ONLY: True})


def is_read_only(session: Session) -> bool:
    return bool(session.info.get(READ_ONLY))


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


def write_now_or_skip(session: Session, fn: Callable[[Session], None]) -> None:
    """Run ``fn`` in a short write transaction of its own, on the engine of ``session`` (read-only or
    not); on SQLite give up at once rather than wait if another writer holds the lock. For
    writes that may be skipped (a token's coarse "last used")."""
    engine = session.get_bind().engine.execution_options(**{READ_ONLY: False})
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        # On the driver's connection: through SQLAlchemy's, the PRAGMA would begin a transaction.
        raw = conn.connection.driver_connection
        if sqlite and raw is not None:
            raw.execute("PRAGMA busy_timeout=0")
        try:
            with Session(bind=conn, expire_on_commit=False) as own, own.begin():
                fn(own)
        except OperationalError as e:
            if not (sqlite and "locked" in str(e)):
                raise
        finally:
            if sqlite and raw is not None:
                raw.execute("PRAGMA busy_timeout=30000")


@contextmanager
def session_scope(url: str, *, read_only: bool = False) -> Iterator[Session]:
    """A unit of work for the CLI and the workers: commit on success, roll back on error.
    ``read_only``: the session only reads (on SQLite it does not wait for the write lock)."""
    session = (get_read_sessionmaker if read_only else get_sessionmaker)(url)()
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
