"""A webhook delivery whose task never reached the broker is sent by a running worker's sweep (at least
once: the receiver dedupes by ``X-Loupe-Delivery``), and the row says why it waits meanwhile. A delivery
whose task did reach the broker (waiting in a busy queue, or between retries) is never sent again."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

from app.db import session_scope
from app.models import Project, WebhookDelivery
from app.models.base import utcnow
from tests.conftest import make_settings, running_worker, settings_env

BROKER_DOWN = "redis://127.0.0.1:1/0"


class Receiver(BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        Receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@contextmanager
def process_settings(settings, monkeypatch):
    """This process's settings (what ``emit`` reads, as a worker's ``_finish`` does) are ``settings``."""
    from app.settings import get_settings

    for key, value in settings_env(settings).items():
        if key.startswith("LOUPE_"):
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()


def _project(url: str, webhook: str) -> int:
    with session_scope(url) as s:
        p = Project(name="hooked", classes=["a", "b"], settings={"auto_pretrain": False, "webhook_url": webhook})
        s.add(p)
        s.flush()
        return p.id


def _delivery(url: str, did: int) -> WebhookDelivery:
    with session_scope(url) as s:
        d = s.get(WebhookDelivery, did)
        s.expunge(d)
        return d


def test_a_delivery_whose_send_failed_reaches_the_receiver(tmp_path, db_url, monkeypatch):
    """The send after a delivery's commit failed (Redis down, a locked SQLite broker): it stayed
    'pending' for good, the integration never heard of the event, and nothing said why."""
    from workers.webhooks import emit

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.calls = []
    worker_settings = make_settings(tmp_path, db_url, job_stale_seconds=6)  # a sweep every 3 s
    pid = _project(db_url, f"http://127.0.0.1:{server.server_port}/hook")
    try:
        with running_worker(worker_settings, queues="cpu") as worker:
            with process_settings(make_settings(tmp_path, db_url, BROKER_DOWN, job_stale_seconds=6), monkeypatch):
                emit(pid, "model_version.ready", {"job_id": 1})  # the send fails; emit says so, never raises
            with session_scope(db_url) as s:
                did = s.query(WebhookDelivery.id).filter_by(project_id=pid).scalar()
            waiting = _delivery(db_url, did)
            assert waiting.status == "pending" and waiting.queued_at is None
            assert "not queued" in (waiting.last_error or ""), waiting.last_error  # what the row shows meanwhile
            deadline = time.monotonic() + 45
            while not Receiver.calls:
                assert time.monotonic() < deadline, f"never delivered: {worker.log_path.read_text()[-2000:]}"
                time.sleep(0.3)
            while _delivery(db_url, did).status == "pending":
                assert time.monotonic() < deadline
                time.sleep(0.3)
    finally:
        server.shutdown()
    headers, _ = Receiver.calls[0]
    assert headers["x-loupe-delivery"] == str(did) and headers["x-loupe-event"] == "model_version.ready"
    done = _delivery(db_url, did)
    assert (done.status, done.last_error) == ("delivered", None) and done.queued_at is not None


def test_the_sweep_sends_only_the_deliveries_that_never_reached_the_broker(db_url, redis_url):
    from workers.webhooks import send_unqueued

    pid = _project(db_url, "http://127.0.0.1:9/hook")
    old = utcnow() - timedelta(seconds=30)
    rows = {  # name: (created_at, queued_at, status)
        "lost": (old, None, "pending"),
        "in the queue": (old, old, "pending"),  # waiting in a busy queue, or between retries
        "just made": (utcnow(), None, "pending"),  # its own send may be under way
        "delivered": (old, None, "delivered"),
        "failed": (old, None, "failed"),
    }
    ids = {name: _add(db_url, pid, *row) for name, row in rows.items()}
    broker = redis.Redis.from_url(redis_url)
    assert send_unqueued(db_url, redis_url) == [ids["lost"]]
    assert broker.llen("cpu") == 1 and _delivery(db_url, ids["lost"]).queued_at is not None
    assert send_unqueued(db_url, redis_url) == [] and broker.llen("cpu") == 1  # sent once, not at every sweep
    # The broker down at a sweep too: the row still waits, and says so; the next sweep sends it.
    later = _add(db_url, pid, old, None, "pending")
    assert send_unqueued(db_url, BROKER_DOWN) == []
    assert "not queued" in (_delivery(db_url, later).last_error or "")
    assert send_unqueued(db_url, redis_url) == [later] and broker.llen("cpu") == 2


def _add(url: str, pid: int, created, queued, status: str) -> int:
    with session_scope(url) as s:
        d = WebhookDelivery(project_id=pid, event="job.failed", payload={"event": "job.failed"},
                            created_at=created, queued_at=queued, status=status)
        s.add(d)
        s.flush()
        return d.id
