"""N simulated annotators against a running Loupe server, for a fixed time.

    # against a server you run (admin credentials; annotator accounts are made as needed)
    .venv/bin/python bench/load.py --url http://127.0.0.1:8000 --password ... --project 1 --annotators 20

    # or let it start its own server, database and project (SQLite or PostgreSQL)
    flock /tmp/loupe-bench.lock .venv/bin/python bench/load.py --spawn postgres --annotators 20 --duration 30 --json

Each annotator (its own account, its own connection) loops: ``POST queue/lease?limit=K``, then ``POST labels``
for every item it got (the true class when the project came from the bundled digits, else a random
class), one call per label with an ``Idempotency-Key``. Reported: requests/s, labels/s, p50/p95/p99 of
queue and label calls, errors by kind, and duplicate leases: an item served to an annotator while
another one holds an unexpired lease on it (must be 0), plus samples labelled by two annotators.

``--rate R`` paces each annotator at R labels/s (label k due at start + k/R, late calls sent at once,
as wrk2 keeps a constant throughput), so latency is measured at a stated load instead of at
saturation: without it every call follows the last answer, the server is always saturated and, by
Little's law, a call takes annotators / requests-per-second on average. ``--warmup S`` (default 3)
runs the load S seconds before times and throughput are recorded; errors and duplicate leases count
from the first call.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
from harness import ROOT, cpu_seconds, free_port, percentile, start_api, stop

ANNOTATOR_PASSWORD = "bench-annotator-pw"


class Stats:
    def __init__(self) -> None:
        self.queue_ms: list[float] = []
        self.label_ms: list[float] = []
        self.label_from_due_ms: list[float] = []  # with --rate: from when the label was due
        self.label_ms_by: dict[str, list[float]] = {}  # per annotator: one connection, so one server process
        self.errors: Counter[str] = Counter()
        self.recording = False  # False during the warm-up
        self.error_examples: list[str] = []  # the first few answers that were errors, to tell why
        self.requests = 0
        self.labels = 0
        self.duplicate_leases = 0
        self.duplicate_examples: list[dict] = []
        self.labelled_by: dict[int, str] = {}
        self.double_labelled = 0
        # sample id -> (annotator, lease expiry) for items served and not yet labelled
        self.held: dict[int, tuple[str, datetime]] = {}


    def example(self, what: str) -> None:
        if len(self.error_examples) < 5:
            self.error_examples.append(what)


class _Reply:
    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code, self.content = status_code, body

    def json(self) -> dict:
        return json.loads(self.content)


class RawClient:
    """One keep-alive HTTP/1.1 connection, bare asyncio streams: what each call costs the machine's
    shared cores is the request and its parsing, not a client library's machinery (httpx costs
    about 1.7 ms of CPU a call, a fifth of what the server spends on it)."""

    def __init__(self, base: str, headers: dict[str, str], timeout: float) -> None:
        url = httpx.URL(base)
        self.host, self.port, self.prefix = url.host, url.port or 80, url.path.rstrip("/")
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.timeout = timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> RawClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    async def _call(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> _Reply:
        try:
            return await asyncio.wait_for(self._exchange(method, path, body, headers or {}), self.timeout)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            if self.writer is not None:
                self.writer.close()
            self.reader = self.writer = None
            raise httpx.TransportError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> _Reply:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        if body:
            extra += f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
        self.writer.write(f"{method} {self.prefix}{path} HTTP/1.1\r\nhost: {self.host}\r\n{self.headers}{extra}\r\n"
                          .encode() + body)
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        if "content-length" not in fields:
            raise ValueError(f"no content-length in the answer: {fields}")
        data = await self.reader.readexactly(int(fields["content-length"]))
        if fields.get("connection", "").lower() == "close":
            self.writer.close()
            self.reader = self.writer = None
        return _Reply(status, data)

    async def get(self, path: str, params: dict | None = None) -> _Reply:
        return await self._call("GET", path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else ""))

    async def post(self, path: str, json: dict, headers: dict[str, str] | None = None) -> _Reply:  # noqa: A002
        import json as _json

        return await self._call("POST", path, _json.dumps(json).encode(), headers)


def _client(kind: str, base: str, token: str):
    headers = {"Authorization": f"Bearer {token}"}
    if kind == "raw":
        return RawClient(base, headers, timeout=30)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=limits)


async def annotator(name: str, token: str, base: str, pid: int, classes: list[str], truth: dict[int, str],
                    page: int, stats: Stats, deadline: float, client_kind: str = "httpx", rate: float = 0) -> None:
    # With a rate, label k is due at start + k / rate (a constant throughput, as wrk2 drives one): a late
    # answer does not lower the load (the next call goes at once), and each annotator starts at a random
    # phase so that 20 of them do not call in step. Without one, every call follows the last answer.
    period = 1 / rate if rate > 0 else 0.0
    due = time.monotonic() + random.uniform(0, period)
    async with _client(client_kind, base, token) as client:
        while time.monotonic() < deadline:
            items = await _take_page(client, pid, page, stats)
            _note_leases(items, name, stats)
            for item in items:
                if time.monotonic() >= deadline:
                    break
                sid = item["sample_id"]
                label = truth.get(sid) or random.choice(classes)
                behind = None
                if period:
                    if (wait := due - time.monotonic()) > 0:
                        await asyncio.sleep(wait)
                    behind = max(0.0, time.monotonic() - due)
                    due += period
                await _label(client, pid, sid, label, name, stats, behind)


async def _take_page(client, pid: int, page: int, stats: Stats) -> list[dict]:
    """``POST queue/lease``, timed; after an error or an empty page, a short pause and no items."""
    rec = stats.recording  # calls that start in the warm-up count errors only
    t0 = time.perf_counter()
    try:
        r = await client.post(f"/projects/{pid}/queue/lease", params={"limit": page})
    except httpx.HTTPError as exc:
        stats.errors[f"queue {type(exc).__name__}"] += 1
        await asyncio.sleep(0.05)
        return []
    if rec:
        stats.queue_ms.append((time.perf_counter() - t0) * 1000)
        stats.requests += 1
    if r.status_code != 200:
        stats.errors[f"queue {r.status_code}"] += 1
        stats.example(f"queue {r.status_code} {r.content[:300]!r}")
        await asyncio.sleep(0.05)
        return []
    items = r.json()["items"]
    if not items:
        stats.errors["queue empty"] += 1
        await asyncio.sleep(0.2)
    return items


def _note_leases(items: list[dict], name: str, stats: Stats) -> None:
    """Count an item served while another annotator holds an unexpired lease on it; hold these."""
    now = datetime.now().astimezone()
    for item in items:
        sid = item["sample_id"]
        holder = stats.held.get(sid)
        if holder is not None and holder[0] != name and holder[1] > now:
            stats.duplicate_leases += 1
            if len(stats.duplicate_examples) < 5:
                stats.duplicate_examples.append({"sample_id": sid, "held_by": holder[0], "served_to": name})
        stats.held[sid] = (name, datetime.fromisoformat(item["lease_expires_at"]))


async def _label(client, pid: int, sid: int, label: str, name: str, stats: Stats, behind: float | None) -> None:
    """``POST labels`` for one item, timed; ``behind``: how late a paced call went out (None unpaced)."""
    rec = stats.recording
    t0 = time.perf_counter()
    try:
        r = await client.post(f"/projects/{pid}/labels", json={"sample_id": sid, "label": label},
                              headers={"Idempotency-Key": uuid.uuid4().hex})
    except httpx.HTTPError as exc:
        stats.errors[f"label {type(exc).__name__}"] += 1
        return
    if rec:
        stats.label_ms.append((time.perf_counter() - t0) * 1000)
        stats.label_ms_by.setdefault(name, []).append(stats.label_ms[-1])
        if behind is not None:  # the call's time plus how late it went out: what the annotator waited for
            stats.label_from_due_ms.append(stats.label_ms[-1] + behind * 1000)
        stats.requests += 1
    if r.status_code != 201:
        stats.errors[f"label {r.status_code}"] += 1
        stats.example(f"label {r.status_code} {r.content[:300]!r}")
        return
    stats.labels += rec
    if stats.held.get(sid, (None,))[0] == name:
        del stats.held[sid]
    if sid in stats.labelled_by and stats.labelled_by[sid] != name:
        stats.double_labelled += 1
    stats.labelled_by[sid] = name


def _login(base: str, username: str, password: str) -> str:
    r = httpx.post(f"{base}/auth/login", json={"username": username, "password": password}, timeout=60)
    r.raise_for_status()
    return r.json()["token"]


def prepare_annotators(base: str, admin_token: str, pid: int, n: int) -> list[tuple[str, str]]:
    h = {"Authorization": f"Bearer {admin_token}"}
    out = []
    for i in range(n):
        name = f"bench-annotator-{i:02d}"
        r = httpx.post(f"{base}/users", json={"username": name, "password": ANNOTATOR_PASSWORD}, headers=h, timeout=60)
        if r.status_code not in (201, 409, 422):
            r.raise_for_status()
        httpx.post(f"{base}/projects/{pid}/members", json={"username": name, "role": "annotator"}, headers=h,
                   timeout=60)
        out.append((name, _login(base, name, ANNOTATOR_PASSWORD)))
    return out


async def run_load(base: str, pid: int, classes: list[str], truth: dict[int, str], tokens: list[tuple[str, str]],
                   duration: float, page: int, client_kind: str = "httpx", rate: float = 0, warmup: float = 0,
                   on_record: Callable[[], None] = lambda: None) -> dict:
    stats = Stats()
    deadline = time.monotonic() + warmup + duration
    started = [time.monotonic()]

    async def record_after_warmup() -> None:
        # The first calls of a fresh server pay for its cold start (connections opened, statements
        # compiled and prepared, caches filled) with 20 annotators arriving at once: not what an hour
        # of labelling costs. Errors count from the start; times and throughput after the warm-up.
        await asyncio.sleep(warmup)
        started[0], stats.recording = time.monotonic(), True
        on_record()

    await asyncio.gather(record_after_warmup(),
                         *(annotator(name, tok, base, pid, classes, truth, page, stats, deadline, client_kind, rate)
                           for name, tok in tokens))
    wall = time.monotonic() - started[0]

    def summary(values: list[float]) -> dict:
        return {"n": len(values), **{f"p{q}_ms": round(percentile(values, q) or 0, 2) for q in (50, 95, 99)},
                "max_ms": round(max(values), 2) if values else None}

    return {
        "annotators": len(tokens), "warmup_s": warmup, "duration_s": round(wall, 2), "page": page,
        "client": client_kind,
        "rate_per_annotator": rate or None, "offered_labels_per_s": round(rate * len(tokens), 1) if rate else None,
        "requests": stats.requests, "requests_per_s": round(stats.requests / wall, 1),
        "labels": stats.labels, "labels_per_s": round(stats.labels / wall, 1),
        "queue": summary(stats.queue_ms), "label": summary(stats.label_ms),
        **({"label_from_due": summary(stats.label_from_due_ms)} if rate else {}),
        "errors": sum(stats.errors.values()), "errors_by_kind": dict(stats.errors),
        "error_examples": stats.error_examples,
        "duplicate_leases": stats.duplicate_leases, "duplicate_examples": stats.duplicate_examples,
        "double_labelled": stats.double_labelled,
        # Spread of the annotators' median label call: each one's connection is served by one server
        # process for the whole run, so an uneven share of connections shows here.
        "label_p50_by_annotator_ms": sorted(round(percentile(v, 50) or 0, 1) for v in stats.label_ms_by.values()),
    }


# ---------------------------------------------------------------- --spawn: a server of our own


def _digits(n: int) -> list[tuple[str, bytes, str]]:
    """n distinct small PNGs from scikit-learn's digits (shifted copies beyond its 1,797)."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    out = []
    for i in range(n):
        k, rep = i % len(d.images), i // len(d.images)
        img = np.roll(d.images[k] * (255 / 16), rep % 8, axis=1) + rep // 8
        buf = io.BytesIO()
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "L").save(buf, "PNG")
        out.append((f"digit_{i:06d}.png", buf.getvalue(), str(d.target[k])))
    return out


@contextmanager
def spawned(kind: str, samples: int, workers: int, pg_admin_url: str, lease_s: int,
            pretrain: dict | None = None) -> Iterator[tuple[str, str, int, dict[int, str], int]]:
    """A server of our own (``workers`` uvicorn processes) on a fresh database with a project of ``samples``
    digits; yields (API base, admin token, project id, the true class of each sample id, server pid)."""
    sys.path.insert(0, str(ROOT))
    tmp = Path(tempfile.mkdtemp(prefix="loupe-load-"))
    db_url, drop = _fresh_database(kind, pg_admin_url, tmp)
    env = dict(os.environ, LOUPE_ENVIRONMENT="test", LOUPE_VAR_DIR=str(tmp), LOUPE_DATABASE_URL=db_url,
               LOUPE_BROKER_URL=f"sqla+sqlite:///{tmp / 'broker.db'}", LOUPE_MEDIA_DIR=str(tmp / "media"),
               LOUPE_ADMIN_PASSWORD="bench-admin-password", LOUPE_DEFAULT_LEASE_SECONDS=str(lease_s))
    server, job_workers, h = None, [], {}
    try:
        subprocess.run([sys.executable, "-m", "app.cli", "init", "--no-demo"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        port = free_port()
        server = start_api(env, port, workers, log_path=tmp / "server.log")
        base = f"http://127.0.0.1:{port}/api/v1"
        token = _login(base, "admin", "bench-admin-password")
        h = {"Authorization": f"Bearer {token}"}
        pid, truth = _digits_project(base, h, samples)
        if pretrain is not None:
            job_workers = start_pretraining(base, h, env, tmp, pretrain)
        yield base, token, pid, truth, server.pid
    finally:
        if pretrain is not None and "job" in pretrain:
            job = httpx.get(f"{base}/jobs/{pretrain['job']}", headers=h).json()
            pretrain.update(state=job["state"], progress_at_end=round(job["progress"], 3), message=job["message"])
            httpx.post(f"{base}/jobs/{pretrain['job']}/cancel", headers=h)
        for proc in job_workers:
            stop(proc, 30)
        if server is not None:
            stop(server)
        drop()
        shutil.rmtree(tmp, ignore_errors=True)


def _fresh_database(kind: str, pg_admin_url: str, tmp: Path) -> tuple[str, Callable[[], None]]:
    """A new SQLite file in ``tmp`` or a new PostgreSQL database: its URL, and what drops it."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'loupe.db'}", lambda: None
    from sqlalchemy import create_engine, text

    pg_db = f"loupe_load_{uuid.uuid4().hex[:8]}"
    admin_engine = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{pg_db}"'))

    def drop() -> None:
        from app.db import get_engine

        get_engine.cache_clear()
        with admin_engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))

    return pg_admin_url.rsplit("/", 1)[0] + f"/{pg_db}", drop


def _digits_project(base: str, h: dict[str, str], samples: int) -> tuple[int, dict[int, str]]:
    """A project of ``samples`` digits, with no job due during the run; its id and each sample's class."""
    r = httpx.post(f"{base}/projects", headers=h, timeout=60, json={
        "name": "load", "classes": [str(i) for i in range(10)],
        # No worker here: the bench measures the API, so no job is due during the run.
        "settings": {"auto_pretrain": False, "auto_embed": False, "retrain_every": 100_000}})
    r.raise_for_status()
    pid = r.json()["id"]
    items = _digits(samples)
    truth_by_name = {n: c for n, _, c in items}
    for i in range(0, len(items), 500):
        r = httpx.post(f"{base}/projects/{pid}/samples", headers=h, timeout=300,
                       files=[("files", (n, d)) for n, d, _ in items[i:i + 500]])
        r.raise_for_status()
    truth, cursor = {}, None
    while True:
        r = httpx.get(f"{base}/projects/{pid}/samples", headers=h, timeout=60,
                      params={"limit": 1000} | ({"cursor": cursor} if cursor else {}))
        page = r.json()
        truth.update({s["id"]: truth_by_name[s["filename"]] for s in page["items"]})
        if not (cursor := page["next_cursor"]):
            break
    return pid, truth


def start_pretraining(base: str, h: dict, env: dict, tmp: Path, pretrain: dict) -> list[subprocess.Popen]:
    """The embedded workers as `loupe serve` starts them, and a pretraining of a second project (2,000
    images) running when the load starts; ``pretrain`` gets its job id and progress."""
    from app.cli import worker_command
    from app.task_client import LONG_QUEUES, SHORT_QUEUES

    procs = [subprocess.Popen(worker_command(q, name=n), cwd=ROOT, env=env, stdout=(tmp / f"{n}.log").open("wb"),
                              stderr=subprocess.STDOUT) for q, n in ((SHORT_QUEUES, "short"), (LONG_QUEUES, "long"))]
    r = httpx.post(f"{base}/projects", headers=h, timeout=60, json={
        "name": "pretraining", "classes": [str(i) for i in range(10)], "settings": {"auto_pretrain": False}})
    r.raise_for_status()
    other = r.json()["id"]
    items = _digits(2000)
    for i in range(0, len(items), 500):
        httpx.post(f"{base}/projects/{other}/samples", headers=h, timeout=300,
                   files=[("files", (n, d)) for n, d, _ in items[i:i + 500]]).raise_for_status()
    budget = pretrain["budget_s"]
    job = httpx.post(f"{base}/projects/{other}/jobs", headers=h, timeout=60, json={
        "kind": "pretrain", "params": {"budget_seconds": budget, "chunk_seconds": budget}}).json()
    pretrain["job"] = job["id"]
    deadline = time.monotonic() + 300
    while (job := httpx.get(f"{base}/jobs/{job['id']}", headers=h).json())["progress"] < 0.03:
        if job["state"] not in ("queued", "running") or time.monotonic() > deadline:
            raise RuntimeError(f"the pretraining did not start: {job}")
        time.sleep(0.5)
    pretrain["progress_at_start"] = round(job["progress"], 3)
    return procs


def _arguments() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8000")
    ap.add_argument("--username", default="admin")
    ap.add_argument("--password", default=os.environ.get("LOUPE_ADMIN_PASSWORD"))
    ap.add_argument("--project", type=int, help="project id (with --url)")
    ap.add_argument("--spawn", choices=["sqlite", "postgres"], help="start a server, database and project")
    ap.add_argument("--pg-admin-url", default=os.environ.get("LOUPE_TEST_PG",
                                                             "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--samples", type=int, default=20_000, help="pool size with --spawn")
    ap.add_argument("--server-workers", type=int, default=2, help="uvicorn worker processes with --spawn")
    ap.add_argument("--lease-seconds", type=int, default=300)
    ap.add_argument("--annotators", type=int, default=20)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--page", type=int, default=5, help="queue page size (limit)")
    ap.add_argument("--warmup", type=float, default=3.0,
                    help="seconds of load before times and throughput are recorded (errors count throughout)")
    ap.add_argument("--rate", type=float, default=0,
                    help="labels per second each annotator aims at (a constant pace; 0: as fast as answers come)")
    ap.add_argument("--profile", help="with --spawn: py-spy the server during the run into this file "
                                     "(collapsed stacks)")
    ap.add_argument("--client", choices=["httpx", "raw"], default="httpx",
                    help="the annotators' HTTP client: httpx, or bare asyncio streams (raw), which leaves more of "
                         "a machine it shares with the server to the server")
    ap.add_argument("--pretrain", type=float, default=0,
                    help="with --spawn: start the embedded workers as `loupe serve` does and run a pretraining of "
                         "this many budget seconds (of a second project, 2,000 images) beside the load")
    ap.add_argument("--json", action="store_true")
    return ap


@contextmanager
def _external(url: str, username: str, password: str, pid: int) -> Iterator[tuple[str, str, int, dict, None]]:
    base = url.rstrip("/") + "/api/v1"
    yield base, _login(base, username, password), pid, {}, None


def _measure(args: argparse.Namespace, base: str, admin_token: str, pid: int, truth: dict[int, str],
             server_pid: int | None) -> dict:
    """The load against a server: the annotators' figures, with the server's and our own CPU over the
    recorded part (after the warm-up) and the load average around it."""
    project = httpx.get(f"{base}/projects/{pid}", headers={"Authorization": f"Bearer {admin_token}"}).json()
    tokens = prepare_annotators(base, admin_token, pid, args.annotators)
    spy = None
    if args.profile and server_pid:
        spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--subprocesses", "-p",
                                str(server_pid), "-f", "raw", "-o", args.profile, "-d", str(int(args.duration)),
                                "-r", "100", "--gil", "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mark: dict = {}  # CPU at the end of the warm-up: the figures are for the recorded part

    def at_record() -> None:
        mark.update(cpu=cpu_seconds(server_pid) if server_pid else None, own=os.times(), load=os.getloadavg()[0])

    result = asyncio.run(run_load(base, pid, project["classes"], truth, tokens, args.duration, args.page,
                                  args.client, args.rate, args.warmup, at_record))
    own1, own0 = os.times(), mark["own"]
    result.update(
        server_cpu_s=round(cpu_seconds(server_pid) - mark["cpu"], 1) if server_pid else None,
        client_cpu_s=round(own1.user + own1.system - own0.user - own0.system, 1),
        loadavg_before=round(mark["load"], 2), loadavg_after=round(os.getloadavg()[0], 2))
    result.update(database=args.spawn or "external", samples=project.get("sample_count"),
                  server_workers=args.server_workers if args.spawn else None, cpus=os.cpu_count())
    if spy is not None:
        spy.wait(timeout=60)
    return result


def main() -> None:
    ap = _arguments()
    args = ap.parse_args()
    if args.pretrain and not args.spawn:
        ap.error("--pretrain needs --spawn (against your own server, start a pretraining in it and run the load)")
    pretrain = {"budget_s": args.pretrain} if args.pretrain else None
    if args.spawn:
        ctx = spawned(args.spawn, args.samples, args.server_workers, args.pg_admin_url, args.lease_seconds, pretrain)
    elif args.url and args.project and args.password:
        ctx = _external(args.url, args.username, args.password, args.project)
    else:
        ap.error("give --spawn sqlite|postgres, or --url with --project and --password")
    with ctx as (base, admin_token, pid, truth, server_pid):
        result = _measure(args, base, admin_token, pid, truth, server_pid)
    if pretrain is not None:
        result["pretrain"] = pretrain
    if args.json:
        print(json.dumps(result))
    else:
        for key in ("database", "samples", "annotators", "duration_s", "requests_per_s", "labels_per_s", "queue",
                    "label", "errors", "errors_by_kind", "duplicate_leases", "double_labelled", "server_cpu_s",
                    "client_cpu_s", "loadavg_before", "loadavg_after", *(["pretrain"] if pretrain else [])):
            print(f"{key:>18}: {result[key]}")


if __name__ == "__main__":
    main()
