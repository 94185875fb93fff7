"""On SQLite (the ``make run`` default), annotators label while a large import runs (issue 16, item 2).

    flock /tmp/loupe-bench.lock .venv/bin/python bench/sqlite_import_labelling.py --json

A server of its own, as ``loupe serve`` runs it: uvicorn with ``--server-workers`` processes and the two
job workers (short and long queues), on a fresh SQLite database and an SQLite broker. A project of
``--pool`` digits is labelled by ``--annotators`` annotators (bench/load.py's: their own accounts and
connections, ``POST queue/lease`` then one ``POST labels`` per item, paced at ``--rate`` labels/s each)
while ``--images`` photographs of ``--size`` px (varied content: colour fields, shapes, grain; JPEG,
one in ten PNG, generated before the clock starts) are uploaded to the same project in requests of
``--per-request`` files; the project embeds new samples (auto_embed), so the short worker embeds them
once they are in. Reported: lease and label calls made during the upload (p50/p95/p99/max), every
failed call (from the first, including the ``--after`` seconds after the import answered), the
import's time and answer, and the load average (the machine may be shared: say so beside a figure).
The floor: no call fails, label p99 under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
from harness import ROOT, free_port, percentile, start_api, stop
from load import Stats, _digits_project, _login, annotator, prepare_annotators
from PIL import Image, ImageDraw

ADMIN_PASSWORD = "bench-admin-password"


def photo(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """One photograph-like picture: a smooth colour field, a dozen shapes, a little grain."""
    w, h = size
    coarse = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB")
    field = coarse.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(field)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = (x0, y0, x0 + int(rng.integers(20, w // 2)), y0 + int(rng.integers(20, h // 2)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=colour)
    grain = rng.integers(-6, 7, (h, w, 3), dtype=np.int16)
    return Image.fromarray(np.clip(np.asarray(field, np.int16) + grain, 0, 255).astype(np.uint8), "RGB")


def make_photos(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """``n`` distinct large images in ``folder``: JPEG (quality 90), every tenth PNG."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / (f"photo_{i:04d}.png" if i % 10 == 9 else f"photo_{i:04d}.jpg")
        img = photo(rng, size)
        if path.suffix == ".png":
            img.save(path, "PNG", compress_level=1)
        else:
            img.save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


@contextlib.contextmanager
def serve(tmp: Path, server_workers: int) -> Iterator[tuple[str, str]]:
    """What ``loupe serve`` runs, on a fresh SQLite database in ``tmp``: yields (API base, admin token)."""
    sys.path.insert(0, str(ROOT))
    tmp.mkdir()
    from app.cli import worker_command
    from app.task_client import LONG_QUEUES, SHORT_QUEUES

    env = dict(os.environ, LOUPE_ENVIRONMENT="test", LOUPE_VAR_DIR=str(tmp),
               LOUPE_DATABASE_URL=f"sqlite:///{tmp / 'loupe.db'}",
               LOUPE_BROKER_URL=f"sqla+sqlite:///{tmp / 'broker.db'}",
               LOUPE_MEDIA_DIR=str(tmp / "media"), LOUPE_ADMIN_PASSWORD=ADMIN_PASSWORD)
    subprocess.run([sys.executable, "-m", "app.cli", "init", "--no-demo"], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    procs = [subprocess.Popen(worker_command(q, name=n), cwd=ROOT, env=env, stdout=(tmp / f"{n}.log").open("wb"),
                              stderr=subprocess.STDOUT) for q, n in ((SHORT_QUEUES, "short"), (LONG_QUEUES, "long"))]
    port = free_port()
    try:
        procs.append(start_api(env, port, server_workers, log_path=tmp / "server.log"))
        base = f"http://127.0.0.1:{port}/api/v1"
        yield base, _login(base, "admin", ADMIN_PASSWORD)
    finally:
        for proc in reversed(procs):
            stop(proc, 30)


def upload_all(base: str, token: str, pid: int, paths: list[Path], per_request: int, out: dict) -> None:
    """Upload the photos, ``per_request`` a request, one after the other; ``out`` gets the answers."""
    h = {"Authorization": f"Bearer {token}"}
    out.update(started=time.monotonic(), answers=[])
    for i in range(0, len(paths), per_request):
        with contextlib.ExitStack() as files:
            parts = [("files", (p.name, files.enter_context(p.open("rb")))) for p in paths[i:i + per_request]]
            r = httpx.post(f"{base}/projects/{pid}/samples", headers=h, files=parts, timeout=1800)
        body = r.json() if r.status_code < 500 else {"body": r.text[:300]}
        out["answers"].append({"status": r.status_code, **body})
    out["ended"] = time.monotonic()


async def label_during(base: str, pid: int, truth: dict[int, str], tokens: list[tuple[str, str]],
                       importer: threading.Thread, args: argparse.Namespace) -> Stats:
    """The annotators: ``args.warmup`` seconds (a fresh server's first calls pay for its cold start),
    then ``importer`` is started and their calls recorded until it ends, then on for ``args.after``
    seconds. Errors count from the first call to the last."""
    stats = Stats()
    forever = time.monotonic() + 86_400
    tasks = [asyncio.create_task(annotator(name, tok, base, pid, [str(i) for i in range(10)], truth, args.page, stats,
                                           forever, "httpx", args.rate)) for name, tok in tokens]
    await asyncio.sleep(args.warmup)
    stats.recording = True
    importer.start()
    while importer.is_alive():
        await asyncio.sleep(0.2)
    stats.recording = False
    await asyncio.sleep(args.after)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def summary(values: list[float]) -> dict:
    return {"n": len(values), **{f"p{q}_ms": round(percentile(values, q) or 0, 1) for q in (50, 95, 99)},
            "max_ms": round(max(values), 1) if values else None}


def run(args: argparse.Namespace, tmp: Path) -> dict:
    """Generate the photos, start the service, label while they are imported; the figures."""
    t0 = time.monotonic()
    paths = make_photos(tmp, args.images, (args.width, args.height))
    made = {"generate_s": round(time.monotonic() - t0, 1), "bytes": sum(p.stat().st_size for p in paths)}
    with serve(tmp / "var", args.server_workers) as (base, token):
        pid, truth = _digits_project(base, {"Authorization": f"Bearer {token}"}, args.pool)
        # New samples are embedded by the short worker, as a project's defaults have it.
        httpx.patch(f"{base}/projects/{pid}", headers={"Authorization": f"Bearer {token}"},
                    json={"settings": {"auto_embed": True}}, timeout=60).raise_for_status()
        tokens = prepare_annotators(base, token, pid, args.annotators)
        upload: dict = {}
        importer = threading.Thread(target=upload_all, args=(base, token, pid, paths, args.per_request, upload))
        load0 = os.getloadavg()
        stats = asyncio.run(label_during(base, pid, truth, tokens, importer, args))
        load1 = os.getloadavg()
    return {
        "database": "sqlite", "images": args.images, "size": f"{args.width}x{args.height}", **made,
        "per_request": args.per_request, "annotators": args.annotators, "rate_per_annotator": args.rate,
        "import_s": round(upload["ended"] - upload["started"], 1), "import_answers": upload["answers"],
        "lease": summary(stats.queue_ms), "label": summary(stats.label_ms), "labels": stats.labels,
        "errors": sum(stats.errors.values()), "errors_by_kind": dict(stats.errors),
        "error_examples": stats.error_examples,
        "duplicate_leases": stats.duplicate_leases, "server_workers": args.server_workers, "cpus": os.cpu_count(),
        "loadavg_1m_before": round(load0[0], 2), "loadavg_1m_after": round(load1[0], 2),
        "loadavg_5m_after": round(load1[1], 2),
    }


def arguments() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--width", type=int, default=2000)
    ap.add_argument("--height", type=int, default=1500)
    ap.add_argument("--per-request", type=int, default=500, help="files a request (500: the whole import in one)")
    ap.add_argument("--pool", type=int, default=3000, help="digits to label")
    ap.add_argument("--annotators", type=int, default=5)
    ap.add_argument("--rate", type=float, default=2.0, help="labels per second each annotator aims at")
    ap.add_argument("--page", type=int, default=5, help="queue page size (limit)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of labelling before the import starts")
    ap.add_argument("--after", type=float, default=5.0, help="seconds of labelling after the import answered")
    ap.add_argument("--server-workers", type=int, default=2, help="uvicorn worker processes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    return ap


def main() -> None:
    args = arguments().parse_args()
    random.seed(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="loupe-import-label-"))
    try:
        result = run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")
    ok = result["errors"] == 0 and (result["label"]["p99_ms"] or 0) < 1000
    print(f"floor (no call fails, label p99 < 1 s): {'met' if ok else 'NOT met'}", file=sys.stderr)


if __name__ == "__main__":
    main()
