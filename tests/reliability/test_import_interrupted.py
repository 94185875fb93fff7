"""An import the database drops midway says what it stored. An import commits in batches (so labels go on
between them), and a batch committed before the failure stays: the generic 503 said "nothing was changed"
while 1,000 documents were stored. The answer now names the count, and sending the same file again
imports the rest, the stored ones counted as duplicates (a private PostgreSQL, stopped mid-import)."""

from __future__ import annotations

import csv
import io
import secrets
import threading
import time

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, insert, text

from tests.conftest import ADMIN_PASSWORD, Api, make_settings
from tests.reliability.conftest import wait_until

DOCS = 3000  # three batches of app/services/text_import.BATCH


def _csv() -> tuple[bytes, list[str]]:
    docs = [f"ticket {i}: the customer cannot {'pay' if i % 2 else 'sign in'} since {i % 97} days" for i in range(DOCS)]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["text"])
    w.writerows([d] for d in docs)
    return buf.getvalue().encode(), docs


def _hold_a_second_batch_row(url: str, pid: int, doc: str):
    """An open transaction holding the (project, content) key of a document of the second batch: the
    import's insert of that batch waits on it, after the first batch committed."""
    from app.models import Sample
    from app.services.text_formats import content_hash

    engine = create_engine(url)
    conn = engine.connect()
    conn.begin()
    conn.execute(insert(Sample), {
        "project_id": pid, "filename": "held", "content_hash": content_hash(doc), "storage_key": "",
        "thumbnail_key": "", "width": 0, "height": 0, "mode": "text", "byte_size": 1, "status": "unlabelled",
        "rand_key": secrets.randbits(62), "is_audit": False})
    return engine, conn


def test_an_import_stopped_by_the_database_says_what_it_stored(private_pg, tmp_path):
    from app.db import session_scope
    from app.main import create_app
    from app.services.auth import create_user

    url = private_pg.database()
    settings = make_settings(tmp_path, url)
    with session_scope(url) as s:
        create_user(s, "admin", ADMIN_PASSWORD, is_admin=True)
    body, docs = _csv()
    with TestClient(create_app(settings)) as client:
        admin = Api(client).login_as("admin", ADMIN_PASSWORD)
        pid = admin.post("/projects", json={"name": "tickets", "kind": "text", "classes": ["pay", "login"],
                                            "settings": {"auto_pretrain": False, "auto_embed": False}}).json()["id"]
        blocker, conn = _hold_a_second_batch_row(url, pid, docs[1500])
        answer: list = []
        upload = threading.Thread(target=lambda: answer.append(admin.post(
            f"/projects/{pid}/samples", files=[("files", ("t.csv", body, "text/csv"))])))
        upload.start()
        counter = create_engine(url)
        try:
            def stored() -> int:
                with counter.connect() as c:
                    return int(c.execute(text("SELECT count(*) FROM samples WHERE project_id = :p"), {"p": pid})
                               .scalar_one())
            wait_until(lambda: stored() >= 1000, 60, "the first batch committed")
            time.sleep(1.0)  # the second batch is waiting on the held row
            assert stored() == 1000 and not answer
        finally:
            counter.dispose()
            private_pg.stop("fast")  # every session ends, the import's and the held row's
            upload.join(60)
            conn.invalidate()  # its server is gone: nothing to roll back
            blocker.dispose()
            private_pg.start()
        r = answer[0]
        assert r.status_code == 503, r.text
        detail = r.json()["detail"]
        assert "1000 new samples were stored" in detail and "nothing was changed" not in detail, detail
        assert "send the same files again" in detail, detail
        # The same file again: the rest is imported, the stored ones are duplicates; every document once.
        again = None
        for _ in range(20):  # the API's pool finds its connections gone first
            again = admin.post(f"/projects/{pid}/samples", files=[("files", ("t.csv", body, "text/csv"))])
            if again.status_code != 503:
                break
            time.sleep(0.5)
        assert again is not None and again.status_code == 201, again.text if again is not None else None
        assert (again.json()["created"], again.json()["duplicates"]) == (DOCS - 1000, 1000), again.json()
        assert admin.get(f"/projects/{pid}").json()["sample_count"] == DOCS
