"""Twenty annotators at once on one queue, over real HTTP: nobody gets a sample someone else holds,
and every label given is in the export exactly once."""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter

import httpx

from tests.conftest import ADMIN_PASSWORD, digits_pngs, imagefolder_zip, live_server, make_settings

ANNOTATORS = 20
SAMPLES = 240


def test_twenty_annotators_share_one_queue(tmp_path, db_url):
    from app.db import session_scope
    from app.services.auth import create_user

    settings = make_settings(tmp_path, db_url)
    with session_scope(settings.database_url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)
    with live_server(settings) as url:
        api = f"{url}/api/v1"
        token = httpx.post(f"{api}/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()["token"]
        admin = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        pid = admin.post("/projects", json={"name": "digits", "classes": [str(i) for i in range(10)],
                                            "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
        items = digits_pngs(SAMPLES)
        r = admin.post(f"/projects/{pid}/samples", files=[("files", ("d.zip", imagefolder_zip(items)))])
        assert r.json()["created"] == SAMPLES
        truth = {f"digits/{c}/{n}": c for n, _, c in items}
        clients = []
        for i in range(ANNOTATORS):
            name = f"annotator{i:02d}"
            assert admin.post("/users", json={"username": name, "password": "pass-word-1"}).status_code == 201
            m = admin.post(f"/projects/{pid}/members", json={"username": name, "role": "annotator"})
            assert m.status_code == 201, m.text
            t = httpx.post(f"{api}/auth/login", json={"username": name, "password": "pass-word-1"}).json()["token"]
            clients.append(httpx.Client(base_url=api, headers={"Authorization": f"Bearer {t}"}, timeout=60))

        served: list[tuple[int, int]] = []  # (sample_id, annotator) for every item handed out
        errors: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(ANNOTATORS)

        def annotate(i: int) -> None:
            c = clients[i]
            start.wait()
            for _ in range(50):
                q = c.post(f"/projects/{pid}/queue/lease", params={"limit": 3})
                if q.status_code != 200:
                    errors.append(f"queue {q.status_code} {q.text}")
                    return
                got = q.json()["items"]
                if not got:
                    return
                with lock:
                    served.extend((it["sample_id"], i) for it in got)
                body = [{"sample_id": it["sample_id"], "label": truth[it["filename"]]} for it in got]
                key = f"{i}-{got[0]['sample_id']}"
                r = c.post(f"/projects/{pid}/labels", json=body, headers={"Idempotency-Key": key})
                if r.status_code != 201:
                    errors.append(f"labels {r.status_code} {r.text}")
                    return

        threads = [threading.Thread(target=annotate, args=(i,)) for i in range(ANNOTATORS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert errors == []
        counts = Counter(sid for sid, _ in served)
        assert max(counts.values()) == 1, [sid for sid, n in counts.items() if n > 1]  # no sample to two people
        assert len(counts) == SAMPLES and len({a for _, a in served}) > 1

        export = list(csv.DictReader(io.StringIO(admin.get(f"/projects/{pid}/export").text)))
        assert len(export) == SAMPLES
        assert Counter(int(row["sample_id"]) for row in export) == Counter({sid: 1 for sid in counts})
        assert all(row["label"] == truth[row["filename"]] for row in export)
        assert admin.get(f"/projects/{pid}").json()["labelled_count"] == SAMPLES
        activity = admin.get(f"/projects/{pid}/activity").json()
        assert sum(a["labels"] for a in activity["annotators"]) == SAMPLES
