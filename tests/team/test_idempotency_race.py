"""Two requests with one Idempotency-Key at once: the key is claimed by the statement that stores the
answer, the second waits for the first, and exactly one of them stores its work."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from app.db import get_sessionmaker, session_scope
from app.models import IdempotencyRecord
from app.services import idempotency
from app.services.auth import create_user


@pytest.mark.parametrize("first_commits", [True, False])
def test_the_second_claim_waits_for_the_first(settings, first_commits):
    url = settings.database_url
    with session_scope(url) as s:
        uid = create_user(s, "ann", "password-123").id
    first = get_sessionmaker(url)()
    assert idempotency.remember(first, uid, "k", "d", 201, {"by": "first"}) is True
    got: dict[str, bool] = {}

    def second() -> None:
        with session_scope(url) as s:
            got["stored"] = idempotency.remember(s, uid, "k", "d", 201, {"by": "second"})

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.5)
    assert t.is_alive(), "the second claim did not wait for the first transaction"
    if first_commits:
        first.commit()
    else:
        first.rollback()
    first.close()
    t.join(30)
    assert got == {"stored": not first_commits}
    with session_scope(url) as s:
        rows = [r.response for r in s.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == "k"))]
    assert rows == [{"by": "first" if first_commits else "second"}]


def test_a_key_used_for_another_request_is_refused_and_stores_nothing(admin, digits_project):
    from tests.conftest import digits_pngs, upload

    pid = digits_project["id"]
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(3)]).status_code == 201
    a, b = [s["id"] for s in admin.get(f"/projects/{pid}/samples").json()["items"]][:2]
    assert admin.post(f"/projects/{pid}/labels", json={"sample_id": a, "label": "1"},
                      headers={"Idempotency-Key": "same"}).status_code == 201
    r = admin.post(f"/projects/{pid}/labels", json={"sample_id": b, "label": "2"}, headers={"Idempotency-Key": "same"})
    assert r.status_code == 422 and "Idempotency-Key" in r.json()["detail"]
    assert admin.get(f"/samples/{b}").json()["label"] is None  # its label was undone with the request
    again = admin.post(f"/projects/{pid}/labels", json={"sample_id": a, "label": "1"},
                       headers={"Idempotency-Key": "same"})
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert len(admin.get(f"/samples/{a}/labels").json()) == 1
