"""The sample browser's word search in a large text project (issue 19), on SQLite, in process.

    flock /tmp/loupe-bench.lock nice -n 10 .venv/bin/python bench/text_search_scale.py --size 200000
    flock /tmp/loupe-bench.lock nice -n 10 .venv/bin/python bench/text_search_scale.py --size 1000000 \
        --db /tmp/text-1m.db --reps 50    # the pool kept there, and reused by the next run
    flock /tmp/loupe-bench.lock nice -n 10 .venv/bin/python bench/text_search_scale.py --size 200000 \
        --postgres loupe_text_200k --reps 20    # PostgreSQL (kept: drop it after)

A migrated SQLite database (migration 0020's FTS5 table and triggers), one text project of ``--size``
documents: AG News' 9,991 pool documents cycled, each with a serial word of its own (``serialNNNNNN``,
so one word matches one document). The FTS index is filled by the triggers as the rows go in (timed).
Then ``app.repos.samples.browse`` (the route's own query, ``q`` as document words) is timed for a page
of 100 in id order, newest first, and unlabelled: for a word in most documents, a word in a few
percent, a word in one, and two words; each query's plan is printed. With ``--db`` the pool is kept in
that file and a later run reuses it (built once: a million documents take minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scale_browser import migrate  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "text" / "ag_news" / "train.jsonl"
QUERIES = [("common word 'the'", "the"), ("word 'oil'", "oil"), ("two words 'oil prices'", "oil prices"),
           ("one document's word", "serial{rare}")]


def fill(path: Path, n: int) -> float:
    docs = [json.loads(x)["text"] for x in DATA.open()]
    now = datetime.now(UTC).isoformat(sep=" ")
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous = OFF")
    con.execute("INSERT INTO projects (id, name, description, classes, settings, kind, created_at) "
                "VALUES (1, 'news', '', ?, '{}', 'text', ?)", ('["a", "b"]', now))
    t0 = time.perf_counter()
    for s in range(0, n, 50_000):
        ids = range(s + 1, min(n, s + 50_000) + 1)
        con.executemany(
            "INSERT INTO samples (id, project_id, filename, content_hash, storage_key, thumbnail_key, width, "
            "height, mode, byte_size, status, rand_key, is_audit, created_at) "
            "VALUES (?, 1, ?, ?, '', '', 0, 0, 'text', 100, 'unlabelled', ?, 0, ?)",
            ((i, f"d{i}", f"{i:064x}", i * 7919 % (2**61), now) for i in ids))
        con.executemany("INSERT INTO sample_texts (sample_id, project_id, text) VALUES (?, 1, ?)",
                        ((i, f"{docs[i % len(docs)]} serial{i:06d}") for i in ids))
        con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()
    return time.perf_counter() - t0


def fill_pg(url: str, n: int) -> float:
    """``fill`` on PostgreSQL (COPY; the GIN index on ``to_tsvector`` kept as the rows go in)."""
    import psycopg

    docs = [json.loads(x)["text"] for x in DATA.open()]
    now = datetime.now(UTC)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as con:
        con.execute("INSERT INTO projects (id, name, description, classes, settings, kind, created_at) "
                    "VALUES (1, 'news', '', '[\"a\", \"b\"]', '{}', 'text', %s)", (now,))
        t0 = time.perf_counter()
        with con.cursor() as cur:
            with cur.copy("COPY samples (id, project_id, filename, content_hash, storage_key, thumbnail_key, width, "
                          "height, mode, byte_size, status, rand_key, is_audit, created_at) FROM STDIN") as cp:
                for i in range(1, n + 1):
                    cp.write_row((i, 1, f"d{i}", f"{i:064x}", "", "", 0, 0, "text", 100, "unlabelled",
                                  i * 7919 % (2**61), False, now))
            with cur.copy("COPY sample_texts (sample_id, project_id, text) FROM STDIN") as cp:
                for i in range(1, n + 1):
                    cp.write_row((i, 1, f"{docs[i % len(docs)]} serial{i:06d}"))
            cur.execute("SELECT setval('samples_id_seq', %s)", (n,))
        con.commit()
        con.execute("ANALYZE")
    return time.perf_counter() - t0


def _plan(s, stmt) -> list[str]:
    from sqlalchemy.dialects import postgresql, sqlite

    if s.get_bind().dialect.name == "postgresql":
        sql = stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        return [r[0] for r in s.connection().exec_driver_sql(f"EXPLAIN {sql}").all()]
    sql = stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    return [r[-1] for r in s.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}").all()]


def timed(url: str, q: str, sort: str, status: str | None, reps: int) -> dict:
    from app.db import session_scope
    from app.repos import samples as samples_repo

    b = samples_repo.Browse(project_id=1, model_version_id=None, limit=101, sort=sort, q=q, words=True,
                            status=status)
    times, found = [], 0
    with session_scope(url) as s:
        for _ in range(reps):
            t0 = time.perf_counter()
            found = len(samples_repo.browse(s, b))
            times.append((time.perf_counter() - t0) * 1000)
        plans = {}
        # The one statement (a common word past the chunks, or PostgreSQL's shape), and the statement a
        # chunk of the word index's ids is looked up by (samples_repo._browse_by_words).
        for name, shown in (("plan", b), ("plan_chunk", replace(b, word_ids=list(range(1, 2001))))):
            plans[name] = _plan(s, samples_repo.browse_statement(shown))
    times.sort()
    return {"rows": found, "p50_ms": round(times[len(times) // 2], 1),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 1), "max_ms": round(times[-1], 1),
            **plans}


def pool(args: argparse.Namespace, tmp: Path) -> tuple[str, float | None]:
    """The pool's URL (built if absent: the seconds it took) and a check that it holds ``--size``."""
    from sqlalchemy import create_engine, text

    if args.postgres:
        from scale import PG_BASE, create_db

        url = f"{PG_BASE}/{args.postgres}"
        try:
            with create_engine(url).connect() as c:
                have = c.execute(text("SELECT count(*) FROM samples")).scalar_one()
        except Exception:  # noqa: BLE001 - absent: build it
            url = create_db(args.postgres)
            return url, round(fill_pg(url, args.size), 1)
    else:
        path = args.db or tmp / "text.db"
        url = f"sqlite:///{path}"
        if not path.exists():
            migrate(url)
            return url, round(fill(path, args.size), 1)
        have = sqlite3.connect(path).execute("SELECT count(*) FROM samples").fetchone()[0]
    if have != args.size:
        sys.exit(f"{url} holds {have} samples, not --size {args.size}")
    return url, None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--db", type=Path, help="keep the pool in this SQLite file; reuse it if it is there")
    ap.add_argument("--postgres", metavar="NAME", help="a PostgreSQL database of this name instead (127.0.0.1; "
                    "created and filled if absent, kept, reused)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, fill_s = pool(args, Path(tmp))
        out = {"size": args.size, "db": "postgres" if args.postgres else "sqlite", "insert_and_index_s": fill_s,
               "load_before": os.getloadavg()[0], "queries": {}}
        for name, q in QUERIES:
            q = q.format(rare=f"{args.size // 2:06d}")
            for sort, status in (("created", None), ("-created", None), ("created", "unlabelled")):
                key = f"{name}, {sort}{', ' + status if status else ''}"
                out["queries"][key] = timed(url, q, sort, status, args.reps)
                print(key, {k: v for k, v in out["queries"][key].items() if not k.startswith("plan")},
                      file=sys.stderr, flush=True)
        out["load_after"] = os.getloadavg()[0]
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
