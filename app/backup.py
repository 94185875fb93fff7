"""``loupe backup`` / ``loupe restore``: the whole database and the media store in one archive.

The archive is a tar (gzipped when its name ends in ``.gz`` or ``.tgz``) holding

* ``manifest.json``: format, creation time, the Alembic revision of the database, the row count of
  every table and the number of media files;
* ``db/NNN-<table>.jsonl``: every row of every table, one JSON object a line, tables in foreign-key
  order. The dump is portable: a SQLite backup restores into PostgreSQL and back;
* ``media/...``: every file of the media store (images, thumbnails, working copies, embeddings,
  checkpoints), except the workers' working sets (``workset/``): they are derived from the working
  copies, as large as all of them together, and rebuilt by the first job that needs them.

The database is read from one snapshot (SQLite: a copy made with the sqlite3 backup API; PostgreSQL:
one REPEATABLE READ, READ ONLY transaction), and the media store is copied after it. Files are always
written before the rows that point at them commit, so every file the snapshot names is in the archive.

Restore goes into an empty place only (a database with no rows, an empty media directory): it migrates
the database to the backup's revision, loads the rows, resets PostgreSQL's id sequences, unpacks the
media, then migrates to the newest revision.
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

from sqlalchemy import Engine, MetaData, Table, create_engine, select, text, update
from sqlalchemy.schema import sort_tables_and_constraints

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
    tables, cyclic = [], {}

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


def backup(database_url: str, media_dir: Path, out: Path, log: Callable[[str], None] = print) -> dict:
    """Write the archive to ``out``; returns the manifest."""
    out = Path(out)
    tmp = Path(tempfile.mkdtemp(prefix="loupe-backup-"))
    try:
        source_url, copy_engine = database_url, None
        if database_url.startswith("sqlite"):
            # A consistent copy while the service runs: the sqlite3 online backup API.
            path = database_url.split("///", 1)[1]
            snap = tmp / "snapshot.db"
            with sqlite3.connect(path) as src, sqlite3.connect(snap) as dst:
                src.backup(dst)
            source_url = f"sqlite:///{snap}"
        engine = copy_engine = create_engine(source_url)
        revision = _revision(engine)
        if revision is None:
            raise BackupError("the database has never been migrated (no alembic_version): nothing to back up")
        meta = MetaData()
        meta.reflect(engine)
        tables, _cyclic = _ordered_tables(meta)
        (tmp / "db").mkdir()
        counts: dict[str, int] = {}
        for i, (table, rows) in enumerate(_snapshot_rows(engine, tables)):
            n = 0
            with (tmp / "db" / f"{i:03d}-{table.name}.jsonl").open("w") as fh:
                for row in rows:
                    fh.write(json.dumps({k: _encode(v) for k, v in row.items()}, separators=(",", ":")) + "\n")
                    n += 1
            counts[table.name] = n
        copy_engine.dispose()
        media_dir = Path(media_dir)
        media_files = [p for p in media_dir.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")
                       and p.relative_to(media_dir).parts[0] != DERIVED_MEDIA] if media_dir.is_dir() else []
        manifest = {"format": FORMAT, "created_at": datetime.now(UTC).isoformat(), "revision": revision,
                    "source_dialect": engine.dialect.name, "tables": counts, "media_files": len(media_files),
                    "table_order": [t.name for t in tables]}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        mode = "w:gz" if out.name.endswith((".gz", ".tgz")) else "w"
        with tarfile.open(partial, mode) as tar:
            tar.add(tmp / "manifest.json", arcname="manifest.json")
            tar.add(tmp / "db", arcname="db")
            for p in media_files:
                tar.add(p, arcname=f"media/{p.relative_to(media_dir).as_posix()}")
        os.replace(partial, out)  # a crash never leaves a half-written archive under the real name
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


def restore(archive: Path, database_url: str, media_dir: Path, log: Callable[[str], None] = print) -> dict:
    """Restore ``archive`` into an empty database and an empty media directory; returns the manifest."""
    from alembic import command

    archive, media_dir = Path(archive), Path(media_dir)
    if media_dir.is_dir() and any(p.is_file() for p in media_dir.rglob("*")):
        raise BackupError(f"the media directory {media_dir} is not empty; restore goes into an empty place")
    tmp = Path(tempfile.mkdtemp(prefix="loupe-restore-"))
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            bad = [m.name for m in members if not _safe_member(m.name) or not (m.isfile() or m.isdir())]
            if bad:
                raise BackupError(f"the archive holds unsafe entries: {bad[:5]}")
            tar.extractall(tmp, members=members, filter="data")
        manifest = json.loads((tmp / "manifest.json").read_text())
        if manifest.get("format") != FORMAT:
            raise BackupError(f"not a Loupe backup (format {manifest.get('format')!r})")

        engine = create_engine(database_url)
        current = _revision(engine)
        cfg = _alembic_config(database_url)
        if current is None:
            command.upgrade(cfg, manifest["revision"])
        elif current != manifest["revision"]:
            raise BackupError(f"the database is at revision {current}, the backup at {manifest['revision']}: "
                              "restore into a new, empty database")
        meta = MetaData()
        meta.reflect(engine)
        tables, cyclic = _ordered_tables(meta)
        if full := _is_empty(engine, tables):
            raise BackupError(f"the database is not empty (rows in {', '.join(full)}); restore goes into an "
                              "empty place")
        by_name = {t.name: t for t in tables}
        files = sorted((tmp / "db").glob("*.jsonl"))
        postgres = engine.dialect.name == "postgresql"
        with engine.begin() as conn:
            deferred: list[tuple[Table, dict]] = []
            for f in files:
                name = f.stem.split("-", 1)[1]
                if name in DERIVED_TABLES:
                    continue
                table = by_name.get(name)
                if table is None:
                    raise BackupError(f"table {name} of the backup is not in the database at its revision")
                late = [c for c in cyclic.get(name, []) if c in table.c]
                batch: list[dict] = []
                for line in f.open():
                    row = {k: _decode(v) for k, v in json.loads(line).items() if k in table.c}
                    if late and any(row.get(c) is not None for c in late):
                        deferred.append((table, {c: row[c] for c in late} | {
                            k: row[k] for k in (c.name for c in table.primary_key.columns)}))
                        row = row | {c: None for c in late}
                    batch.append(row)
                    if len(batch) >= CHUNK:
                        conn.execute(table.insert(), batch)
                        batch.clear()
                if batch:
                    conn.execute(table.insert(), batch)
            for table, values in deferred:
                pk = [c.name for c in table.primary_key.columns]
                conn.execute(update(table).where(*(table.c[k] == values[k] for k in pk))
                             .values({k: v for k, v in values.items() if k not in pk}))
            if postgres:
                for table in tables:
                    pk = list(table.primary_key.columns)
                    if len(pk) == 1 and pk[0].name == "id":
                        conn.execute(text(
                            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                            f"COALESCE((SELECT MAX(id) FROM \"{table.name}\"), 1), "
                            f"(SELECT MAX(id) IS NOT NULL FROM \"{table.name}\"))"))
        if postgres:
            # Planner statistics for the restored rows now, not when autovacuum comes round: without
            # them the queue's statements were planned onto the wrong indexes (docs/deploy.md).
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        engine.dispose()

        media_dir.mkdir(parents=True, exist_ok=True)
        src = tmp / "media"
        n_media = 0
        if src.is_dir():
            for p in src.rglob("*"):
                if p.is_file():
                    target = media_dir / p.relative_to(src)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(p, target)
                    n_media += 1
        command.upgrade(cfg, "head")
        log(f"restored {sum(manifest['tables'].values())} rows in {len(manifest['tables'])} tables and "
            f"{n_media} media files from {archive}")
        return manifest
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
