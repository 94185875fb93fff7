"""The sample browser's page of 100 at a large pool: ``GET /projects/{pid}/samples`` by filter and order.

    flock /tmp/loupe-bench.lock .venv/bin/python bench/scale.py --browser --size 1000000 --db sqlite
    flock /tmp/loupe-bench.lock .venv/bin/python bench/scale.py --browser --size 1000000 --db postgres

or in two steps, the pool built outside the lock (nothing is timed then) and only the walks inside it:

    .venv/bin/python bench/scale.py --browser --size 1000000 --db postgres --build-only /tmp/pool.json
    flock /tmp/loupe-bench.lock .venv/bin/python bench/scale.py --browser --pool /tmp/pool.json --plans

One pool of ``--size`` sample rows (bulk-inserted; no image files: the listing never opens one), 1 % of
them labelled, a tenth from ImageFolder sub-folders, the random audit twentieth, and a model version's
predictions for every sample written by the train job's own writer (``store_version``: COPY on
PostgreSQL, batched INSERTs on SQLite). The real API (uvicorn, ``--server-workers`` processes) answers
one client that browses: for each filter/order, ``--walks`` walks of ``--pages`` pages of 100 from the
first page, each following ``next_cursor``; every request is timed (p50/p99 in ms). The floor is p99
under 100 ms at 1M samples (issue 17).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from harness import ROOT, free_port, percentile, rounded, start_api, stop

sys.path.insert(0, str(ROOT))

CLASSES = [f"c{i}" for i in range(10)]
PASSWORD = "bench-password-1"
# What an expert asks the browser for: the default order, the usual filters, each order by the model.
QUERIES = [
    ("created", {}),
    ("-created", {"sort": "-created"}),
    ("unlabelled", {"status": "unlabelled"}),
    ("labelled, label c3", {"label": "c3"}),
    ("least sure first", {"sort": "confidence"}),
    ("unlabelled, most sure first", {"status": "unlabelled", "sort": "-confidence"}),
    ("suggested c3, most sure first", {"suggested": "c3", "sort": "-confidence"}),
    ("confidence 0.4-0.6", {"min_confidence": "0.4", "max_confidence": "0.6"}),
    ("score", {"sort": "score"}),
    ("folder c2", {"folder": "c2"}),
    ("audit", {"audit": "true"}),
    ("file name contains '77'", {"q": "77"}),
    ("model disagrees", {"disagreement": "model"}),
]


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def migrate(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "head")


def sqlite_samples(path: Path, pid: int, n: int, seed: int) -> float:
    """``n`` sample rows by executemany on SQLite's own driver; returns seconds."""
    rng = np.random.default_rng(seed)
    keys = rng.integers(0, 2**62, n, dtype=np.int64).tolist()
    now = datetime.now(UTC).isoformat(sep=" ")
    t0 = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous = OFF")

    def rows(s: int, e: int):
        for i in range(s, e):
            h = f"{i:064x}"
            folder = CLASSES[(i // 10) % 10] if i % 10 == 0 else None
            yield (pid, f"img_{i:07d}.jpg", h, f"images/{h}.jpg", f"thumbs/{h}.jpg", 32, 32, "RGB", 2000,
                   folder, "unlabelled", keys[i], keys[i] % 20 == 0, now)

    for s in range(0, n, 100_000):
        con.executemany("INSERT INTO samples (project_id, filename, content_hash, storage_key, thumbnail_key, "
                        "width, height, mode, byte_size, source_folder, status, rand_key, is_audit, created_at) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows(s, min(n, s + 100_000)))
        con.commit()
    con.close()
    return time.perf_counter() - t0


def pool(url: str, db: str, tmp: Path, n: int, seed: int) -> dict:
    """The project, its samples (1 % labelled) and a model version's predictions for all of them."""
    from sqlalchemy import text

    from app.db import session_scope
    from app.services.auth import create_user, issue_token
    from app.services.projects import create_project

    with session_scope(url) as s:
        admin = create_user(s, "admin", PASSWORD, is_admin=True)
        pid = create_project(s, "browse", CLASSES, settings={"auto_pretrain": False, "auto_embed": False}).id
        token = issue_token(s, admin, name="bench", kind="api", ttl_hours=None)
    if db == "sqlite":
        import_s = sqlite_samples(tmp / "loupe.db", pid, n, seed)
    else:
        from scale import copy_samples

        import_s = copy_samples(url, pid, n, seed)
        with session_scope(url) as s:
            s.execute(text("UPDATE samples SET source_folder = 'c' || ((id / 10) % 10) WHERE id % 10 = 0"))
    log(f"  {n} sample rows in {import_s:.1f}s")
    with session_scope(url) as s:
        # 1 % labelled, the label the cluster the model will suggest most of the time.
        s.execute(text("UPDATE samples SET status = 'labelled', label = 'c' || ((id / 100) % 10) "
                       "WHERE project_id = :p AND id % 100 = 7"), {"p": pid})
    t0 = time.perf_counter()
    predictions(url, pid, n, seed)
    log(f"  predictions of every sample written in {time.perf_counter() - t0:.1f}s")
    if db == "sqlite":
        con = sqlite3.connect(tmp / "loupe.db")
        con.execute("ANALYZE")
        con.close()
    else:
        from sqlalchemy import create_engine

        vac = create_engine(url, isolation_level="AUTOCOMMIT")
        with vac.connect() as c:
            c.exec_driver_sql("VACUUM ANALYZE")
        vac.dispose()
    return {"project_id": pid, "token": token, "import_s": import_s}


def predictions(url: str, pid: int, n: int, seed: int) -> None:
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import Sample
    from app.repos import predictions as predictions_repo

    with session_scope(url) as s:
        ids = np.array(s.scalars(select(Sample.id).where(Sample.project_id == pid).order_by(Sample.id)).all())
    rng = np.random.default_rng(seed + 1)
    logits = rng.standard_normal((len(ids), len(CLASSES)), dtype=np.float32) * 1.5
    logits[np.arange(len(ids)), (ids // 100) % 10] += 2.0
    proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    scores = (1 - proba.max(axis=1)).astype(np.float64)
    predictions_repo.store_version(
        url, predictions_repo.NewModelVersion(project_id=pid, job_id=None, estimator="logistic", strategy="margin",
                                              label_count=n // 100, embedding_version_id=None,  # type: ignore[arg-type]
                                              label_revisions=n // 100),
        predictions_repo.Predictions(sample_ids=ids, classes=CLASSES, proba=proba, scores=scores,
                                     priority=scores.copy(), reasons=[None] * len(ids)))


def browse(base: str, pid: int, token: str, params: dict, walks: int, pages: int) -> dict:
    """``walks`` walks of ``pages`` pages of 100 from the first page; each request timed."""
    import httpx

    times, shown = [], 0
    with httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {token}"}) as c:
        c.get(f"/api/v1/projects/{pid}/samples", params={**params, "limit": 100}).raise_for_status()  # warm-up
        for _ in range(walks):
            cursor = None
            for _ in range(pages):
                q = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
                t0 = time.perf_counter()
                r = c.get(f"/api/v1/projects/{pid}/samples", params=q)
                times.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                body = r.json()
                shown += len(body["items"])
                cursor = body["next_cursor"]
                if cursor is None:
                    break
    return {"requests": len(times), "items_per_page": round(shown / len(times), 1),
            "p50_ms": rounded(percentile(times, 50)), "p99_ms": rounded(percentile(times, 99)),
            "max_ms": rounded(max(times))}


def plans(url: str, pid: int) -> None:
    """Each query's plan (first page), as the database gives it: an index scan, not a sort of the pool."""
    from sqlalchemy import text

    from app.db import session_scope
    from app.models import Project
    from app.repos.samples import Browse, browse_statement

    floats, bools = {"min_confidence", "max_confidence"}, {"audit"}
    with session_scope(url) as s:
        mv = s.get(Project, pid).current_model_version_id
        for label, params in QUERIES:
            kw = {k: float(v) if k in floats else v == "true" if k in bools else v for k, v in params.items()}
            stmt = browse_statement(Browse(project_id=pid, model_version_id=mv, limit=101, **kw))
            sql = str(stmt.compile(s.get_bind(), compile_kwargs={"literal_binds": True}))
            explain = "EXPLAIN QUERY PLAN " if s.get_bind().dialect.name == "sqlite" else "EXPLAIN "
            rows = s.execute(text(explain + sql)).all()
            log(f"  {label}:\n    " + "\n    ".join(str(r[-1]) for r in rows))
            if s.get_bind().dialect.name == "postgresql":
                log("    generic plan:\n    " + "\n    ".join(generic_plan(s, stmt)))


def generic_plan(s, stmt) -> list[str]:
    """PostgreSQL's plan of ``stmt`` as a prepared statement's generic plan, its parameters unknown to the
    planner: what the API runs once psycopg has prepared a statement (after its fifth run on a
    connection), which a plan with the values written in does not show."""
    from sqlalchemy import text
    from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

    c = stmt.compile(dialect=PGDialect_asyncpg(), compile_kwargs={"render_postcompile": True})  # $1, $2, ...
    args = ", ".join(f"'{v}'" if isinstance(v, str) else str(v) for v in (c.params[k] for k in c.positiontup))
    conn = s.connection()
    conn.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
    conn.exec_driver_sql(("PREPARE browse_plan AS " + c.string).replace("%", "%%"))  # no placeholders of psycopg's
    try:
        return [str(r[0]) for r in conn.exec_driver_sql(f"EXPLAIN EXECUTE browse_plan({args})".replace("%", "%%"))]
    finally:
        conn.exec_driver_sql("DEALLOCATE browse_plan")


def in_process(url: str, pid: int, params: dict, walks: int, pages: int) -> dict:
    """The same walks through the service in this process (the query and its rows, no HTTP): what the
    database and the ORM cost, apart from the API's processes and a loaded machine's scheduling."""
    from app.db import session_scope
    from app.models import Project
    from app.services import samples as sample_service
    from app.settings import get_settings

    kw = {k: float(v) if k.endswith("confidence") else v == "true" if k == "audit" else v for k, v in params.items()}
    query, times = sample_service.BrowseQuery(**kw), []
    for _ in range(walks):
        cursor = None
        for _ in range(pages):
            with session_scope(url, read_only=True) as s:
                t0 = time.perf_counter()
                items, cursor = sample_service.browse(s, get_settings(), s.get(Project, pid), query, cursor, 100)
                times.append((time.perf_counter() - t0) * 1000)
            if cursor is None:
                break
    return {"p50_ms": rounded(percentile(times, 50)), "p99_ms": rounded(percentile(times, 99))}


def run(args) -> dict:
    if args.pool:  # built beforehand by --build-only (outside the bench lock: building is not timed)
        kept = json.loads(args.pool.read_text())
        tmp, url, name, p = Path(kept["tmp"]), kept["url"], kept["name"], kept["pool"]
        args.db, args.size = kept["db"], kept["size"]
        tmp.mkdir(parents=True, exist_ok=True)
    elif args.db == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="loupe-browse-"))
        url = f"sqlite:///{tmp}/loupe.db"
        name = None
    else:
        from scale import PG_BASE, admin_engine

        tmp = Path(tempfile.mkdtemp(prefix="loupe-browse-"))
        name = f"loupe_browse_{args.size}_{os.getpid()}"
        with admin_engine().connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = f"{PG_BASE}/{name}"
    env = dict(os.environ, LOUPE_ENVIRONMENT="test", LOUPE_DATABASE_URL=url, LOUPE_MEDIA_DIR=str(tmp / "media"),
               LOUPE_VAR_DIR=str(tmp), LOUPE_BROKER_URL=f"sqla+sqlite:///{tmp}/broker.db", PYTHONPATH=str(ROOT))
    os.environ.update({k: v for k, v in env.items() if k.startswith("LOUPE_")})
    keep = False
    try:
        if not args.pool:
            migrate(url)
            p = pool(url, args.db, tmp, args.size, args.seed)
        if args.build_only:
            args.build_only.write_text(json.dumps({"db": args.db, "size": args.size, "url": url, "name": name,
                                                   "tmp": str(tmp), "pool": p}))
            keep = True
            return {"built": str(args.build_only), "db": args.db, "size": args.size}
        if args.plans:
            plans(url, p["project_id"])
        port = free_port()
        api = start_api(env, port, args.server_workers, log_path=tmp / "server.log")
        try:
            out = {label: browse(f"http://127.0.0.1:{port}", p["project_id"], p["token"], params, args.walks,
                                 args.pages) for label, params in QUERIES}
        finally:
            stop(api)
        for label, params in QUERIES:
            out[label]["in_process"] = in_process(url, p["project_id"], params, args.walks, args.pages)
        for label, r in out.items():
            log(f"  {label:32s} p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  ({r['requests']} requests, "
                f"{r['items_per_page']} a page); in process p50 {r['in_process']['p50_ms']:6.2f} ms "
                f"p99 {r['in_process']['p99_ms']:6.2f} ms")
        return {"size": args.size, "db": args.db, "server_workers": args.server_workers,
                "load_avg": os.getloadavg(), "queries": out}
    finally:
        if not keep:
            if name:
                from scale import drop_db

                drop_db(name)
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--server-workers", type=int, default=2)
    ap.add_argument("--walks", type=int, default=10, help="walks from the first page, per query")
    ap.add_argument("--pages", type=int, default=10, help="pages (of 100) a walk follows")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plans", action="store_true", help="print each query's plan first")
    ap.add_argument("--out", type=Path, help="also append the JSON line to this file")
    ap.add_argument("--build-only", type=Path, metavar="FILE",
                    help="build the pool, keep it, describe it in FILE and stop (no lock needed: nothing is timed)")
    ap.add_argument("--pool", type=Path, metavar="FILE",
                    help="time the pool --build-only described (its --db and --size), then drop it")
    args = ap.parse_args()
    log(f"load average before: {os.getloadavg()}")
    row = run(args)
    line = json.dumps(row)
    print(line, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
