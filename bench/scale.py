"""How Loupe's costs grow with the pool: 10k, 100k and 1M samples on PostgreSQL.

    flock /tmp/loupe-bench.lock .venv/bin/python bench/scale.py --sizes 10000,100000,1000000 --json
    flock /tmp/loupe-bench.lock .venv/bin/python bench/scale.py --browser --size 1000000 --db sqlite

With ``--browser`` it measures the sample browser's pages instead (``bench/scale_browser.py``).

For each size, in a fresh database of its own (dropped afterwards unless ``--keep``):

* ``import_s``: bulk import of the sample rows (COPY; the images themselves need not exist);
* ``refresh_s``: a full queue refresh, i.e. the real train job (``workers.jobs.runner.run_job`` on a
  jobs row: claim, fit on ~200 labels, score every sample, write the predictions by COPY, switch the
  queue's version, drop old versions) timed end to end in its own worker process, twice (the second
  run also deletes an old version's predictions); ``worker_peak_mb`` is that process's peak RSS;
* ``queue_p50_ms``/``queue_p99_ms`` and ``label_p50_ms``/``label_p99_ms``: ``POST queue/lease`` and
  ``POST labels`` under ``--annotators`` concurrent annotators (httpx, async) against a real uvicorn
  server (``--server-workers`` processes), each one fetching a page of 10 and labelling every item;
* ``metrics_ms``: the median of ``GET /projects/{pid}/metrics`` (and ``projects_ms`` for
  ``GET /projects``, which counts samples too);
* ``api_peak_mb``: the largest peak RSS (VmHWM) of the API's processes after all of it
  (``--server-workers`` uvicorn workers; ``api_total_peak_mb`` adds them up).

Embeddings are synthetic (512-d float16, clustered), written through ``app.embedding_store`` with
an EmbeddingVersion row, exactly where the embed job would put them.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from harness import ROOT, free_port, peak_rss_mb, percentile, process_tree, rounded, start_api, stop

sys.path.insert(0, str(ROOT))

PG_BASE = os.environ.get("LOUPE_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS = os.environ.get("LOUPE_BENCH_REDIS", "redis://127.0.0.1:6379/15")
DIM = 512
CLASSES = [f"c{i}" for i in range(10)]
PASSWORD = "bench-password-1"


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- database


def admin_engine():
    from sqlalchemy import create_engine

    return create_engine(f"{PG_BASE}/test", isolation_level="AUTOCOMMIT")


def create_db(name: str) -> str:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    with admin_engine().connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{PG_BASE}/{name}"
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    cfg.attributes["skip_logging"] = True
    command.upgrade(cfg, "head")
    return url


def drop_db(name: str) -> None:
    from sqlalchemy import text

    with admin_engine().connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def copy_samples(url: str, project_id: int, n: int, seed: int) -> float:
    """COPY ``n`` synthetic sample rows; returns seconds."""
    from app.db import get_engine

    rng = np.random.default_rng(seed)
    rand_keys = rng.integers(0, 2**62, n, dtype=np.int64)
    now = datetime.now(UTC).isoformat()
    cols = ("project_id, filename, content_hash, storage_key, thumbnail_key, width, height, mode, byte_size, "
            "status, rand_key, is_audit, created_at")
    t0 = time.perf_counter()
    raw = get_engine(url).raw_connection()
    try:
        with raw.cursor() as cur, cur.copy(f"COPY samples ({cols}) FROM STDIN") as cp:
            for s in range(0, n, 50_000):
                buf = io.StringIO()
                for i in range(s, min(n, s + 50_000)):
                    h = f"{i:064x}"
                    rk = int(rand_keys[i])
                    buf.write(f"{project_id}\timg_{i:07d}.jpg\t{h}\timages/{h[:2]}/{h[2:4]}/{h}.jpg\t"
                              f"thumbs/{h[:2]}/{h[2:4]}/{h}.jpg\t32\t32\tRGB\t2000\tunlabelled\t{rk}\t"
                              f"{'t' if rk % 20 == 0 else 'f'}\t{now}\n")
                cp.write(buf.getvalue())
        raw.commit()
        with raw.cursor() as cur:
            cur.execute("ANALYZE samples")
        raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - t0


def synthetic_embeddings(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(CLASSES), DIM), dtype=np.float32) * 0.6
    y = rng.integers(0, len(CLASSES), n)
    X = np.empty((n, DIM), dtype=np.float16)
    # One bank of noise, rows drawn from it at random per block: drawing 512M normals took 80 s at 1M.
    bank = rng.standard_normal((65536, DIM), dtype=np.float32)
    for s in range(0, n, 65536):
        e = slice(s, s + 65536)
        X[e] = centres[y[e]] + bank[rng.integers(0, len(bank), len(y[e]))]
    return X, y


def setup_pool(url: str, media: Path, n: int, annotators: int, labels: int, seed: int) -> dict:
    from sqlalchemy import select

    from app import embedding_store
    from app.db import session_scope
    from app.models import EmbeddingVersion, Project, Sample
    from app.services.auth import create_user, issue_token
    from app.services.labels import LabelRequest, add_labels
    from app.services.projects import add_member, create_project

    with session_scope(url) as s:
        admin = create_user(s, "admin", PASSWORD, is_admin=True)
        project = create_project(s, "scale", CLASSES, settings={"auto_pretrain": False, "auto_embed": False})
        pid = project.id
        tokens = [issue_token(s, admin, name="bench", kind="api", ttl_hours=None)]
        for i in range(annotators):
            u = create_user(s, f"annotator{i:02d}", PASSWORD)
            add_member(s, project, u.username, "annotator")
            tokens.append(issue_token(s, u, name="bench", kind="api", ttl_hours=None))
    import_s = copy_samples(url, pid, n, seed)
    log(f"  {n} sample rows by COPY in {import_s:.2f}s")

    t0 = time.perf_counter()
    with session_scope(url) as s:
        ids = np.array(s.scalars(select(Sample.id).where(Sample.project_id == pid).order_by(Sample.id)).all(),
                       dtype=np.int64)
        audit = np.array(s.scalars(select(Sample.is_audit).where(Sample.project_id == pid)
                                   .order_by(Sample.id)).all(), dtype=bool)
    X, y = synthetic_embeddings(n, seed)
    file_key, ids_key = embedding_store.write(media, pid, f"bench-{uuid.uuid4().hex[:8]}", ids, X)
    with session_scope(url) as s:
        ev = EmbeddingVersion(project_id=pid, kind="pixels", dim=DIM, dtype="float16", count=n,
                              file_key=file_key, ids_key=ids_key)
        s.add(ev)
        s.flush()
        s.get(Project, pid).current_embedding_version_id = ev.id
    emb_s = time.perf_counter() - t0
    log(f"  {n} x {DIM} float16 embeddings stored in {emb_s:.2f}s")

    # ~200 labels, a tenth of them on the audit sample, the true cluster as the label.
    rng = np.random.default_rng(seed + 1)
    pick = np.concatenate([rng.choice(np.flatnonzero(~audit), labels - labels // 10, replace=False),
                           rng.choice(np.flatnonzero(audit), labels // 10, replace=False)])
    with session_scope(url) as s:
        from app.models import User

        project = s.get(Project, pid)
        user = s.scalar(select(User).where(User.username == "annotator00"))
        add_labels(s, project, user, [LabelRequest(int(ids[i]), CLASSES[int(y[i])]) for i in pick])
    return {"project_id": pid, "tokens": tokens, "import_s": import_s, "embeddings_s": emb_s,
            "first_id": int(ids[0]), "y": y}


# ---------------------------------------------------------------- the worker's refresh

TRAIN_SNIPPET = r"""
import json, resource, sys, time
from sqlalchemy import select
from app.db import session_scope
from app.models import Job
from app.settings import get_settings
from workers.jobs.runner import run_job
import workers.jobs.train, ml.estimators, ml.strategies, ml.evaluation  # a warm worker has these loaded
url = get_settings().database_url
with session_scope(url) as s:
    job = Job(project_id=int(sys.argv[1]), kind="train", params={"reason": "bench"}, state="queued")
    s.add(job); s.flush(); jid = job.id
t0 = time.perf_counter()
run_job(jid)
elapsed = time.perf_counter() - t0
with session_scope(url) as s:
    job = s.get(Job, jid)
    out = {"state": job.state, "error": job.error, "result": job.result}
    from app.models import ModelVersion
    mv = s.get(ModelVersion, (job.result or {}).get("model_version")) if job.state == "succeeded" else None
    out["metrics"] = {k: v for k, v in (mv.metrics if mv else {}).items() if k.endswith("seconds")}
out["refresh_s"] = elapsed
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def refresh(env: dict, pid: int) -> dict:
    p = subprocess.run([sys.executable, "-c", TRAIN_SNIPPET, str(pid)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1800)
    line = next((ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"train run failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    out = json.loads(line[7:])
    if out["state"] != "succeeded":
        raise RuntimeError(f"train job {out['state']}: {out['error']}\n{p.stderr[-3000:]}")
    return out


# ---------------------------------------------------------------- the API under load


async def annotate(base: str, pid: int, tokens: list[str], pages: int, warmup: int, think_s: float,
                   truth: np.ndarray, first_id: int) -> dict:
    """Each annotator takes a page of 10, then labels every item with its true class (the synthetic
    cluster), so the next fit sees clean labels, as it would with real experts."""
    import httpx

    queue_ms: list[float] = []
    label_ms: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=len(tokens) + 4, max_keepalive_connections=len(tokens) + 4)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(token: str, seed: int) -> None:
            rnd = random.Random(seed)
            h = {"Authorization": f"Bearer {token}"}
            for page in range(pages + warmup):
                t0 = time.perf_counter()
                r = await client.post(f"/api/v1/projects/{pid}/queue/lease", params={"limit": 10}, headers=h)
                dt = (time.perf_counter() - t0) * 1000
                if r.status_code != 200:
                    errors.append(f"queue {r.status_code} {r.text[:200]}")
                    continue
                if page >= warmup:
                    queue_ms.append(dt)
                for item in r.json()["items"]:
                    t0 = time.perf_counter()
                    lr = await client.post(f"/api/v1/projects/{pid}/labels", headers=h,
                                           json={"sample_id": item["sample_id"],
                                                 "label": CLASSES[int(truth[item["sample_id"] - first_id])]})
                    dt = (time.perf_counter() - t0) * 1000
                    if lr.status_code != 201:
                        errors.append(f"label {lr.status_code} {lr.text[:200]}")
                    elif page >= warmup:
                        label_ms.append(dt)
                    if think_s:  # an expert looks at the image before answering
                        await asyncio.sleep(think_s * rnd.uniform(0.5, 1.5))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(t, i) for i, t in enumerate(tokens)))
        wall = time.perf_counter() - t0
    return {"queue_ms": queue_ms, "label_ms": label_ms, "errors": errors, "wall_s": wall}


def timed_get(base: str, path: str, token: str, n: int) -> list[float]:
    import httpx

    out = []
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as c:
        c.get(path).raise_for_status()  # warm-up
        for _ in range(n):
            t0 = time.perf_counter()
            c.get(path).raise_for_status()
            out.append((time.perf_counter() - t0) * 1000)
    return out


# ---------------------------------------------------------------- one size


def run_size(n: int, args) -> dict:
    from app.db import get_engine

    name = f"loupe_scale_{n}_{os.getpid()}"
    tmp = Path(tempfile.mkdtemp(prefix=f"loupe-scale-{n}-"))
    url = create_db(name)
    env = dict(os.environ, LOUPE_ENVIRONMENT="test", LOUPE_DATABASE_URL=url, LOUPE_BROKER_URL=REDIS,
               LOUPE_MEDIA_DIR=str(tmp / "media"), LOUPE_VAR_DIR=str(tmp), PYTHONPATH=str(ROOT))
    os.environ.update({k: v for k, v in env.items() if k.startswith("LOUPE_")})
    from app.settings import get_settings

    get_settings.cache_clear()
    try:
        log(f"size {n}: setting up in {name}")
        pool = setup_pool(url, tmp / "media", n, args.annotators, args.labels, args.seed)
        runs = [refresh(env, pool["project_id"]) for _ in range(args.refreshes)]
        for r in runs:
            log(f"  refresh {r['refresh_s']:.2f}s {r['metrics']} peak {r['peak_mb']:.0f} MB")
        get_engine(url).dispose()
        from sqlalchemy import create_engine

        vac = create_engine(url, isolation_level="AUTOCOMMIT")
        with vac.connect() as c:  # what autovacuum would do soon after a big COPY
            c.exec_driver_sql("VACUUM ANALYZE")
        vac.dispose()
        return {
            "size": n,
            "import_s": round(pool["import_s"], 3),
            "import_rows_per_s": round(n / pool["import_s"]),
            "refresh_s": round(max(r["refresh_s"] for r in runs), 3),
            "refresh_runs_s": [round(r["refresh_s"], 3) for r in runs],
            "refresh_parts_s": runs[-1]["metrics"],
            "worker_peak_mb": round(max(r["peak_mb"] for r in runs), 1),
            **serve_and_measure(env, tmp, pool, args),
        }
    finally:
        get_engine(url).dispose()
        get_engine.cache_clear()
        if not args.keep:
            drop_db(name)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log(f"  kept database {name} and {tmp}")


def serve_and_measure(env: dict, tmp: Path, pool: dict, args) -> dict:
    """The API on the pool: annotators labelling, then the metrics and project list, and its memory."""
    pid = pool["project_id"]
    port = free_port()
    api = start_api(env, port, args.server_workers, log_path=tmp / "server.log")
    try:
        base = f"http://127.0.0.1:{port}"
        load = asyncio.run(annotate(base, pid, pool["tokens"][1:], args.pages, warmup=1, think_s=args.think,
                                    truth=pool["y"], first_id=pool["first_id"]))
        if load["errors"]:
            log(f"  {len(load['errors'])} errors, first: {load['errors'][:3]}")
        metrics_ms = timed_get(base, f"/api/v1/projects/{pid}/metrics", pool["tokens"][0], args.repeat)
        projects_ms = timed_get(base, "/api/v1/projects", pool["tokens"][0], args.repeat)
        # Per process: with --server-workers > 1 the supervisor is small and each worker holds an app.
        api_peaks = [peak_rss_mb(p) for p in process_tree(api.pid)]
    finally:
        stop(api)
    return {
        "annotators": args.annotators,
        "think_s": args.think,
        "queue_requests": len(load["queue_ms"]),
        "queue_p50_ms": rounded(percentile(load["queue_ms"], 50)),
        "queue_p99_ms": rounded(percentile(load["queue_ms"], 99)),
        "label_requests": len(load["label_ms"]),
        "label_p50_ms": rounded(percentile(load["label_ms"], 50)),
        "label_p99_ms": rounded(percentile(load["label_ms"], 99)),
        "labels_per_s": round(len(load["label_ms"]) / load["wall_s"], 1),
        "errors": len(load["errors"]),
        "metrics_ms": round(statistics.median(metrics_ms), 2),
        "metrics_p99_ms": rounded(percentile(metrics_ms, 99)),
        "projects_ms": round(statistics.median(projects_ms), 2),
        "api_peak_mb": round(max(api_peaks), 1),
        "api_processes": len(api_peaks),
        "api_total_peak_mb": round(sum(api_peaks), 1),
        "server_workers": args.server_workers,
    }


def main() -> None:
    if "--browser" in sys.argv:  # the sample browser's pages at a large pool: bench/scale_browser.py
        sys.argv.remove("--browser")
        from scale_browser import main as browser_main

        return browser_main()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--annotators", type=int, default=20)
    ap.add_argument("--server-workers", type=int, default=2,
                    help="uvicorn worker processes (as bench/load.py and `loupe serve` on 2 cores)")
    ap.add_argument("--pages", type=int, default=5, help="queue pages (of 10) each annotator labels")
    ap.add_argument("--think", type=float, default=0.5,
                    help="mean seconds an annotator looks at an image before labelling (0: flat out)")
    ap.add_argument("--labels", type=int, default=200, help="labels the train job fits on")
    ap.add_argument("--refreshes", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=20, help="timed metrics requests")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep each size's database and media")
    ap.add_argument("--json", action="store_true", help="one JSON object per size on stdout")
    ap.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    args = ap.parse_args()
    for n in [int(s) for s in args.sizes.split(",") if s]:
        row = run_size(n, args)
        line = json.dumps(row)
        if args.json:
            print(line, flush=True)
        else:
            print(", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            with args.out.open("a") as fh:
                fh.write(line + "\n")


if __name__ == "__main__":
    main()
