"""Import speed with real files, end to end through the REST API of a real server.

    flock /tmp/loupe-bench.lock .venv/bin/python bench/import_speed.py --json
    flock /tmp/loupe-bench.lock .venv/bin/python bench/import_speed.py --db sqlite --modes batches --batch 50
    flock /tmp/loupe-bench.lock .venv/bin/python bench/import_speed.py --modes zip --labels-from-folders

Uploads ../shared/data/cifar10-test (10,000 JPEGs, one sub-folder per class) to a fresh project on a
fresh database, once as one zip (built in memory before the clock starts) and once as batches of
``--batch`` files per multipart request, and reports images/s from the first byte sent to the last
answer received: every file is checked (decoded), hashed, stored, thumbnailed and becomes a row. The
server is uvicorn with ``--server-workers`` processes (2, as ``loupe serve`` runs it). ``--db`` picks
SQLite, PostgreSQL or both. ``--labels-from-folders`` keeps the zip's class sub-folders as imported
labels (loose files of the batches mode have no folder: they stay unlabelled).
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
import uuid
import zipfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from report import emit  # noqa: E402
from scale import create_db, drop_db, free_port, peak_rss_mb, process_tree, start_api  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "cifar10-test"
PASSWORD = "bench-password-1"


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def files(root: Path, limit: int | None) -> list[tuple[str, bytes]]:
    paths = sorted(p for p in root.rglob("*") if p.is_file())[:limit]
    return [(p.relative_to(root.parent).as_posix(), p.read_bytes()) for p in paths]


def as_zip(items: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    # Stored, as JPEGs usually are zipped (they do not compress); the server inflates nothing.
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in items:
            zf.writestr(name, data)
    return buf.getvalue()


def import_once(c, db: str, server_workers: int, mode: str, items: list[tuple[str, bytes]], batch: int,
                labels: bool = False) -> dict:
    """Import ``items`` into a new project one way (one zip, or ``batch`` files a request), timed."""
    classes = sorted({n.split("/")[1] for n, _ in items})
    r = c.post("/projects", json={"name": f"{mode}-{uuid.uuid4().hex[:6]}", "classes": classes,
                                  "settings": {"auto_pretrain": False, "auto_embed": False}})
    r.raise_for_status()
    pid = r.json()["id"]
    payload = as_zip(items) if mode == "zip" else None
    created = duplicates = rejected = requests = labelled = 0
    params = {"labels_from_folders": "true"} if labels else {}
    t0 = time.perf_counter()
    if mode == "zip":
        r = c.post(f"/projects/{pid}/samples", params=params, files=[("files", ("cifar10-test.zip", payload))])
        r.raise_for_status()
        answers = [r.json()]
    else:
        answers = []
        for s in range(0, len(items), batch):
            chunk = items[s:s + batch]
            r = c.post(f"/projects/{pid}/samples", params=params, files=[("files", (n, d)) for n, d in chunk])
            r.raise_for_status()
            answers.append(r.json())
    wall = time.perf_counter() - t0
    for a in answers:
        created += a["created"]
        duplicates += a["duplicates"]
        rejected += len(a["rejected"])
        labelled += a["labelled"]
    requests = len(answers)
    row = {"db": db, "server_workers": server_workers,
           "mode": mode, "batch": batch if mode == "batches" else None, "images": len(items),
           "created": created, "duplicates": duplicates, "rejected": rejected, "requests": requests,
           "labels_from_folders": labels, "labelled": labelled,
           "seconds": round(wall, 3), "images_per_s": round(len(items) / wall, 1)}
    log(f"  {db} {mode}: {row['images_per_s']} images/s ({created} created, {duplicates} duplicates, "
        f"{rejected} rejected, {labelled} labelled) in {wall:.2f}s")
    return row


@contextmanager
def serving(db: str, server_workers: int, log_path: Path | None = None):
    """A fresh database (SQLite file or PostgreSQL database) behind a real uvicorn server of
    ``server_workers`` processes, an admin's API client on it, and the server's pid; removed after
    (the server's output kept in ``log_path`` if given)."""
    import httpx

    from app.db import get_engine, session_scope
    from app.services.auth import create_user, issue_token

    tmp = Path(tempfile.mkdtemp(prefix=f"loupe-import-{db}-"))
    name = f"loupe_scale_import_{os.getpid()}"
    url = create_db(name) if db == "postgres" else None
    if url is None:
        from alembic import command
        from alembic.config import Config

        url = f"sqlite:///{tmp / 'loupe.db'}"
        cfg = Config(str(ROOT / "alembic.ini"))
        cfg.attributes["url"] = url
        cfg.attributes["skip_logging"] = True
        command.upgrade(cfg, "head")
    env = dict(os.environ, LOUPE_ENVIRONMENT="test", LOUPE_DATABASE_URL=url, LOUPE_MEDIA_DIR=str(tmp / "media"),
               LOUPE_VAR_DIR=str(tmp), LOUPE_BROKER_URL=f"sqla+sqlite:///{tmp / 'broker.db'}", PYTHONPATH=str(ROOT))
    with session_scope(url) as s:
        token = issue_token(s, create_user(s, "admin", PASSWORD, is_admin=True), name="bench", kind="api",
                            ttl_hours=None)
    get_engine(url).dispose()
    api = start_api(env, free_port_value := free_port(), server_workers, log_path)
    base = f"http://127.0.0.1:{free_port_value}/api/v1"
    try:
        with httpx.Client(base_url=base, timeout=600, headers={"Authorization": f"Bearer {token}"}) as c:
            yield c, api.pid
    finally:
        api.terminate()
        api.wait(timeout=20)
        if db == "postgres":
            drop_db(name)
        shutil.rmtree(tmp, ignore_errors=True)


def run_one(db: str, modes: list[str], items: list[tuple[str, bytes]], batch: int, server_workers: int,
            labels: bool = False) -> list[dict]:
    out = []
    with serving(db, server_workers) as (c, api_pid):
        for mode in modes:
            out.append(import_once(c, db, server_workers, mode, items, batch, labels))
        peak = max(peak_rss_mb(p) for p in process_tree(api_pid))  # the largest API process
        for row in out:
            row["api_peak_mb"] = round(peak, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--db", default="sqlite,postgres")
    ap.add_argument("--modes", default="zip,batches")
    ap.add_argument("--batch", type=int, default=100, help="files per request in batches mode")
    ap.add_argument("--server-workers", type=int, default=2, help="API processes (loupe serve's default)")
    ap.add_argument("--limit", type=int, help="only the first N files")
    ap.add_argument("--labels-from-folders", action="store_true", help="keep the zip's sub-folders as labels")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, help="also append the JSON lines here")
    args = ap.parse_args()
    items = files(args.data, args.limit)
    log(f"{len(items)} files, {sum(len(d) for _, d in items) / 1e6:.1f} MB")
    for db in args.db.split(","):
        for row in run_one(db, args.modes.split(","), items, args.batch, args.server_workers,
                           args.labels_from_folders):
            emit(row, args.json, args.out)


if __name__ == "__main__":
    main()
