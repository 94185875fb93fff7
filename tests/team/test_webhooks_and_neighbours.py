"""Webhooks signed with HMAC and retried with back-off; the neighbourhood and suggestion views."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fastapi.testclient import TestClient

from tests.conftest import ADMIN_PASSWORD, Api, digits_pngs, imagefolder_zip, make_settings, running_worker, upload


class Receiver(BaseHTTPRequestHandler):
    calls: list = []
    fail_first = 1

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        Receiver.calls.append((dict(self.headers), body))
        self.send_response(500 if len(Receiver.calls) <= Receiver.fail_first else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_on_model_ready_is_signed_and_retried(tmp_path, sqlite_url):
    from app.db import session_scope
    from app.main import create_app
    from app.services.auth import create_user

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Receiver.calls = []
    settings = make_settings(tmp_path, sqlite_url)
    with session_scope(settings.database_url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)
    with TestClient(create_app(settings)) as client:
        admin = Api(client).login_as("admin", ADMIN_PASSWORD)
        url = f"http://127.0.0.1:{server.server_port}/hook"
        pid = admin.post("/projects", json={"name": "p", "classes": [str(i) for i in range(10)], "settings": {
            "auto_pretrain": False, "webhook_url": url, "webhook_secret": "s3cr3t"}}).json()["id"]
        assert admin.get(f"/projects/{pid}").json()["settings"]["webhook_secret"] == "********"
        upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(60)])
        t0 = time.monotonic()
        with running_worker(settings):
            while len(Receiver.calls) < 2:
                assert time.monotonic() - t0 < 90, Receiver.calls
                time.sleep(0.2)
    server.shutdown()
    (h1, b1), (h2, b2) = Receiver.calls[:2]
    assert b1 == b2  # the retry is the same event
    event = json.loads(b2)
    assert event["event"] == "model_version.ready" and event["project_id"] == pid
    expected = "sha256=" + hmac.new(b"s3cr3t", b2, hashlib.sha256).hexdigest()
    assert {k.lower(): v for k, v in h2.items()}["x-loupe-signature"] == expected


def test_neighbours_and_suggestions(tmp_path, sqlite_url):
    from app.db import session_scope
    from app.main import create_app
    from app.services.auth import create_user

    settings = make_settings(tmp_path, sqlite_url)
    with session_scope(settings.database_url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)
    with TestClient(create_app(settings)) as client:
        admin = Api(client).login_as("admin", ADMIN_PASSWORD)
        pid = admin.post("/projects", json={"name": "p", "classes": [str(i) for i in range(10)],
                                            "settings": {"auto_pretrain": False}}).json()["id"]
        items = digits_pngs(300)
        upload(admin, pid, [("d.zip", imagefolder_zip(items))])
        truth = {f"digits/{c}/{n}": c for n, _, c in items}
        samples = admin.get(f"/projects/{pid}/samples", params={"limit": 1000}).json()["items"]
        assert admin.get(f"/projects/{pid}/neighbours", params={"sample_id": samples[0]["id"]}).status_code == 422
        with running_worker(settings):
            deadline = time.monotonic() + 90
            while admin.get(f"/projects/{pid}").json()["current_model_version"] is None:
                assert time.monotonic() < deadline
                time.sleep(0.3)
            # Neighbours of a digit are mostly the same digit (pixel embeddings before pretraining).
            probe = samples[0]
            near = admin.get(f"/projects/{pid}/neighbours", params={"sample_id": probe["id"], "limit": 10}).json()
            sims = [i["similarity"] for i in near["items"]]
            assert len(sims) == 10 and sims == sorted(sims, reverse=True) and probe["id"] not in [
                i["sample_id"] for i in near["items"]]
            by_id = {s["id"]: truth[s["filename"]] for s in samples}
            same = sum(by_id[i["sample_id"]] == truth[probe["filename"]] for i in near["items"])
            assert same >= 6, same
            # A cluster: the neighbourhood of three samples of one digit, merged by best similarity,
            # equals merging their single neighbourhoods by hand, and leaves the three out.
            digit = truth[probe["filename"]]
            cluster = [s["id"] for s in samples if by_id[s["id"]] == digit][:3]
            merged = admin.get(f"/projects/{pid}/neighbours", params={"sample_id": cluster, "limit": 15}).json()
            best: dict[int, float] = {}
            for sid in cluster:
                page = admin.get(f"/projects/{pid}/neighbours", params={"sample_id": sid, "limit": 300}).json()
                for i in page["items"]:
                    if i["sample_id"] not in cluster:
                        best[i["sample_id"]] = max(best.get(i["sample_id"], -1.0), i["similarity"])
            expected = sorted(best.items(), key=lambda kv: -kv[1])[:15]
            got = [(i["sample_id"], i["similarity"]) for i in merged["items"]]
            assert [s for s, _ in got] == [s for s, _ in expected] or [round(v, 4) for _, v in got] == [
                round(v, 4) for _, v in expected], (got, expected)
            assert not set(cluster) & {s for s, _ in got}
            assert sum(by_id[s] == digit for s, _ in got) >= 10
            # An id outside the project is named in a 404; too many ids are refused.
            bad = admin.get(f"/projects/{pid}/neighbours", params={"sample_id": [cluster[0], 10**9]})
            assert bad.status_code == 404 and str(10**9) in bad.json()["detail"]
            assert admin.get(f"/projects/{pid}/neighbours", params={"sample_id": list(range(1, 60))}).status_code == 422
            # Label 40 so the model suggests; then the suggestion view lists one class, surest first.
            body = [{"sample_id": s["id"], "label": truth[s["filename"]]} for s in samples[:40]]
            admin.post(f"/projects/{pid}/labels", json=body)
            admin.post(f"/projects/{pid}/jobs", json={"kind": "train"})
            deadline = time.monotonic() + 90
            while admin.get(f"/projects/{pid}/metrics").json()["learning_curve"][-1]["labels"] < 40:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        sug = admin.get(f"/projects/{pid}/suggestions", params={"label": "3", "limit": 20}).json()["items"]
        confs = [i["suggestion"]["confidence"] for i in sug]
        assert sug and confs == sorted(confs, reverse=True)
        assert all(i["status"] == "unlabelled" and i["suggestion"]["label"] == "3" for i in sug)
        assert sum(by_id[i["sample_id"]] == "3" for i in sug) >= 0.7 * len(sug)
        assert admin.get(f"/projects/{pid}/suggestions", params={"label": "cat"}).status_code == 422


def test_a_delivery_whose_webhook_was_removed_fails_saying_so(use_settings):
    """A webhook removed while one of its events waited: the delivery fails with the reason, once (it
    raised TypeError inside httpx and was retried to the end)."""
    from app.db import session_scope
    from app.models import Project, WebhookDelivery
    from workers.webhooks import deliver

    with session_scope(use_settings.database_url) as s:
        project = Project(name="p", classes=["a", "b"], settings={})
        s.add(project)
        s.flush()
        delivery = WebhookDelivery(project_id=project.id, event="job.failed", payload={"event": "job.failed"})
        s.add(delivery)
        s.flush()
        did = delivery.id
    deliver.apply(args=[did])
    with session_scope(use_settings.database_url) as s:
        d = s.get(WebhookDelivery, did)
        assert (d.status, d.attempts) == ("failed", 1)
        assert "webhook was removed" in d.last_error
