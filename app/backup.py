"""``loupe backup`` / ``loupe restore``: the whole database and the media store in one archive.

The archive is a tar (gzipped when its name ends in ``.gz`` or ``.tgz``) holding

* ``manifest.json``: format, creation time, the Alembic revision of the database, the row count of
  every table, the SHA-256 of every table dump and of every media file (``dumps``, ``media``);
* ``db/NNN-<table>.jsonl``: every row of every table, one JSON object a line, tables in foreign-key
  order. The dump is portable: a SQLite backup restores into PostgreSQL and back;
* ``media/...``: every file of the media store (images, thumbnails, working copies, embeddings,
  checkpoints), except the workers' working sets (``workset/``): they are derived from the working
  copies, as large as all of them together, and rebuilt by the first job that needs them.

The database is read from one snapshot (SQLite: a copy made with the sqlite3 backup API; PostgreSQL:
one REPEATABLE READ, READ ONLY transaction), and the media store is copied after it. Files are always
written before the rows that point at them commit, so every file the snapshot names is in the archive.

Restore trusts no archive: before anything in the target changes it checks every table's row count
and every dump's and media file's hash against the manifest (files missing, added or altered), and
refuses, naming what differs. It goes into an empty place only (a database with no rows, an empty
media directory; a SQLite file and its folders that do not exist yet are made): it migrates the
database to the backup's revision, loads the rows, resets PostgreSQL's id sequences, unpacks the
media, then migrates to the newest revision.

Archives are written readable by their owner only (0600): they hold every account's password hash.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, Table, create_engine, select, text, update
from sqlalchemy.schema import sort_tables_and_constraints

from app.backup_manifest import hashes, manifest_problems
from app.db import private_sqlite_file
from app.repos.texts import is_word_index

ROOT = Path(__file__).resolve().parent.parent
FORMAT = "loupe-backup/1"
# Rebuilt from the working copies when missing (workers/jobs/working_set.py): not worth archiving.
DERIVED_MEDIA = "workset"
CHUNK = 2000
SKIP_TABLES = {"alembic_version"}
# Kept by the database itself (PostgreSQL triggers on samples, migration 0005): dumped for the record,
# never loaded, since the triggers rebuild it as the samples load (SQLite does not use it).
DERIVED_TABLES = {"sample_counts"}


class BackupError(Exception):
    pass


def _alembic_config(url: str):
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    return cfg


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        try:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except Exception:  # noqa: BLE001 - no alembic_version table: never migrated
            return None


def _ordered_tables(meta: MetaData) -> tuple[list[Table], dict[str, list[str]]]:
    """Tables parents first, and the columns of foreign keys in a cycle (projects <-> model_versions):
    those are loaded NULL and set once every table is in."""
    tables: list[Table] = []
    cyclic: dict[str, list[str]] = {}

    def only_nullable_may_wait(fkc) -> bool | None:
        # A NOT NULL foreign key must be loaded after its parent; a nullable one may break a cycle.
        return False if any(not c.nullable for c in fkc.columns) else None

    for table, fkcs in sort_tables_and_constraints(list(meta.tables.values()), filter_fn=only_nullable_may_wait):
        if table is not None:
            if table.name not in SKIP_TABLES:
                tables.append(table)
            continue
        for fkc in fkcs:
            cyclic.setdefault(fkc.table.name, []).extend(c.name for c in fkc.columns)
    return tables, cyclic


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict | list) or value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        (k, v), = value.items()
        if k == "$dt":
            return datetime.fromisoformat(v)
        if k == "$date":
            return date.fromisoformat(v)
        if k == "$b64":
            return base64.b64decode(v)
    return value


def _snapshot_rows(engine: Engine, tables: list[Table]) -> Iterator[tuple[Table, Iterator[dict]]]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            for table in tables:
                pk = list(table.primary_key.columns) or list(table.columns)[:1]
                result = conn.execution_options(yield_per=CHUNK).execute(select(table).order_by(*pk))
                yield table, (dict(row._mapping) for row in result)


def _sqlite_snapshot(database_url: str, tmp: Path) -> str:
    """A consistent copy of a SQLite database while the service runs (the sqlite3 online backup API)."""
    path = database_url.split("///", 1)[1]
    snap = tmp / "snapshot.db"
    with sqlite3.connect(path) as src, sqlite3.connect(snap) as dst:
        src.backup(dst)
    return f"sqlite:///{snap}"


def _dump_tables(engine: Engine, tables: list[Table], folder: Path) -> dict[str, int]:
    """Every row of ``tables`` as ``folder/NNN-<table>.jsonl``; the row count of each table."""
    folder.mkdir()
    counts: dict[str, int] = {}
    for i, (table, rows) in enumerate(_snapshot_rows(engine, tables)):
        n = 0
        with (folder / f"{i:03d}-{table.name}.jsonl").open("w") as fh:
            for row in rows:
                fh.write(json.dumps({k: _encode(v) for k, v in row.items()}, separators=(",", ":")) + "\n")
                n += 1
        counts[table.name] = n
    return counts


def _media_files(media_dir: Path) -> list[Path]:
    if not media_dir.is_dir():
        return []
    return [p for p in media_dir.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")
            and p.relative_to(media_dir).parts[0] != DERIVED_MEDIA]


def _write_archive(out: Path, tmp: Path, media_dir: Path, media_files: list[Path]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    partial.touch(mode=0o600)  # made private before a byte is in it: it holds the password hashes
    gz = out.name.endswith((".gz", ".tgz"))
    with tarfile.open(partial, "w:gz") if gz else tarfile.open(partial, "w") as tar:
        tar.add(tmp / "manifest.json", arcname="manifest.json")
        tar.add(tmp / "db", arcname="db")
        for p in media_files:
            tar.add(p, arcname=f"media/{p.relative_to(media_dir).as_posix()}")
    os.replace(partial, out)  # a crash never leaves a half-written archive under the real name


def backup(database_url: str, media_dir: Path, out: Path, log: Callable[[str], None] = print) -> dict:
    """Write the archive to ``out``; returns the manifest."""
    out, media_dir = Path(out), Path(media_dir)
    tmp = Path(tempfile.mkdtemp(prefix="loupe-backup-"))
    try:
        source_url = _sqlite_snapshot(database_url, tmp) if database_url.startswith("sqlite") else database_url
        engine = create_engine(source_url)
        try:
            revision = _revision(engine)
            if revision is None:
                raise BackupError("the database has never been migrated (no alembic_version): nothing to back up")
            tables, _cyclic = _reflect(engine)
            counts = _dump_tables(engine, tables, tmp / "db")
        finally:
            engine.dispose()
        media_files = _media_files(media_dir)
        manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(), "revision": revision,
                    "source_dialect": engine.dialect.name, "tables": counts, "media_files": len(media_files),
                    "table_order": [t.name for t in tables],
                    "dumps": hashes(tmp / "db", sorted((tmp / "db").glob("*.jsonl"))),
                    "media": hashes(media_dir, media_files)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        _write_archive(out, tmp, media_dir, media_files)
        log(f"backed up {sum(counts.values())} rows in {len(counts)} tables and {len(media_files)} media files "
            f"to {out}")
        return manifest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _safe_member(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts


def _is_empty(engine: Engine, tables: list[Table]) -> list[str]:
    with engine.connect() as conn:
        return [t.name for t in tables if conn.execute(select(t).limit(1)).first() is not None]


def _reflect(engine: Engine) -> tuple[list[Table], dict[str, list[str]]]:
    meta = MetaData()
    # SQLite's word index (FTS5, migration 0020) is the database's own: its triggers rebuild it as the
    # documents are loaded, so it is neither dumped nor loaded.
    meta.reflect(engine, only=lambda name, _meta: not is_word_index(name))
    return _ordered_tables(meta)


def _extract(archive: Path, tmp: Path) -> dict:
    """Unpack ``archive`` into ``tmp`` (refusing unsafe entries); its manifest."""
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        bad = [m.name for m in members if not _safe_member(m.name) or not (m.isfile() or m.isdir())]
        if bad:
            raise BackupError(f"the archive holds unsafe entries: {bad[:5]}")
        tar.extractall(tmp, members=members, filter="data")
    manifest = json.loads((tmp / "manifest.json").read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"not a Loupe backup (format {manifest.get('format')!r})")
    return manifest


def _verify(tmp: Path, manifest: dict) -> None:
    """Refuse an unpacked archive whose tables or files differ from its manifest, naming what differs."""
    problems = manifest_problems(tmp, manifest)
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise BackupError("the archive does not match its manifest, so nothing was restored: "
                          + "; ".join(problems[:10]) + more)


def _empty_database_at(engine: Engine, database_url: str, revision: str) -> tuple[list[Table], dict[str, list[str]]]:
    """Migrate a new database to the backup's ``revision`` (or find it there), check it holds no rows, and
    return its tables in load order with the cyclic foreign-key columns (``_ordered_tables``)."""
    from alembic import command

    current = _revision(engine)
    if current is None:
        command.upgrade(_alembic_config(database_url), revision)
    elif current != revision:
        raise BackupError(f"the database is at revision {current}, the backup at {revision}: "
                          "restore into a new, empty database")
    tables, cyclic = _reflect(engine)
    if full := _is_empty(engine, tables):
        raise BackupError(f"the database is not empty (rows in {', '.join(full)}); restore goes into an "
                          "empty place")
    return tables, cyclic


def _load_table(conn: Connection, table: Table, dump: Path, late: list[str]) -> list[tuple[Table, dict]]:
    """Insert the rows of one dump file in chunks, its ``late`` columns (a foreign-key cycle) NULL; the
    values those columns wait for, with the primary key, to set once every table is in."""
    deferred: list[tuple[Table, dict]] = []
    batch: list[dict] = []
    pk = [c.name for c in table.primary_key.columns]
    with dump.open() as lines:
        for line in lines:
            row = {k: _decode(v) for k, v in json.loads(line).items() if k in table.c}
            if late and any(row.get(c) is not None for c in late):
                deferred.append((table, {c: row[c] for c in late} | {k: row[k] for k in pk}))
                row = row | {c: None for c in late}
            batch.append(row)
            if len(batch) >= CHUNK:
                conn.execute(table.insert(), batch)
                batch.clear()
    if batch:
        conn.execute(table.insert(), batch)
    return deferred


def _load_rows(conn: Connection, dumps: list[Path], tables: list[Table], cyclic: dict[str, list[str]]) -> None:
    """Every dumped table in order (derived ones skipped), then the columns a foreign-key cycle held back."""
    by_name = {t.name: t for t in tables}
    deferred: list[tuple[Table, dict]] = []
    for dump in dumps:
        name = dump.stem.split("-", 1)[1]
        if name in DERIVED_TABLES:
            continue
        table = by_name.get(name)
        if table is None:
            raise BackupError(f"table {name} of the backup is not in the database at its revision")
        deferred += _load_table(conn, table, dump, [c for c in cyclic.get(name, []) if c in table.c])
    for table, values in deferred:
        pk = [c.name for c in table.primary_key.columns]
        conn.execute(update(table).where(*(table.c[k] == values[k] for k in pk))
                     .values({k: v for k, v in values.items() if k not in pk}))


def _reset_sequences(conn: Connection, tables: list[Table]) -> None:
    """PostgreSQL: each ``id`` sequence continues after the restored rows."""
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) == 1 and pk[0].name == "id":
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"COALESCE((SELECT MAX(id) FROM \"{table.name}\"), 1), "
                f"(SELECT MAX(id) IS NOT NULL FROM \"{table.name}\"))"))


def _analyze(engine: Engine) -> None:
    # Planner statistics for the restored rows now, not when autovacuum comes round: without
    # them the queue's statements were planned onto the wrong indexes (docs/deploy.md).
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()


def _move_media(src: Path, media_dir: Path) -> int:
    """Move the unpacked media files into the (empty) media store; how many."""
    media_dir.mkdir(parents=True, exist_ok=True)
    n_media = 0
    if src.is_dir():
        for p in src.rglob("*"):
            if p.is_file():
                target = media_dir / p.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(p, target)
                n_media += 1
    return n_media


def restore(archive: Path, database_url: str, media_dir: Path, log: Callable[[str], None] = print) -> dict:
    """Restore ``archive`` into an empty database and an empty media directory; returns the manifest."""
    from alembic import command

    archive, media_dir = Path(archive), Path(media_dir)
    if media_dir.is_dir() and any(p.is_file() for p in media_dir.rglob("*")):
        raise BackupError(f"the media directory {media_dir} is not empty; restore goes into an empty place")
    tmp = Path(tempfile.mkdtemp(prefix="loupe-restore-"))
    try:
        manifest = _extract(archive, tmp)
        _verify(tmp, manifest)  # before anything in the target changes
        private_sqlite_file(database_url)  # a var dir that does not exist yet is fine
        engine = create_engine(database_url)
        try:
            tables, cyclic = _empty_database_at(engine, database_url, manifest["revision"])
            postgres = engine.dialect.name == "postgresql"
            with engine.begin() as conn:
                _load_rows(conn, sorted((tmp / "db").glob("*.jsonl")), tables, cyclic)
                if postgres:
                    _reset_sequences(conn, tables)
            if postgres:
                _analyze(engine)
        finally:
            engine.dispose()
        n_media = _move_media(tmp / "media", media_dir)
        command.upgrade(_alembic_config(database_url), "head")
        log(f"restored {sum(manifest['tables'].values())} rows in {len(manifest['tables'])} tables and "
            f"{n_media} media files from {archive}")
        return manifest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
