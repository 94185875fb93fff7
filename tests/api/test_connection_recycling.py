"""The queue and label routes ask a client to reconnect every MAX_REQUESTS_PER_CONNECTION answers, so
keep-alive connections spread again over the API processes (bench/load.py)."""

from __future__ import annotations

from tests.conftest import digits_pngs, upload


def test_every_nth_answer_on_a_connection_closes_it(admin, digits_project, monkeypatch):
    from app.api import deps

    monkeypatch.setattr(deps, "MAX_REQUESTS_PER_CONNECTION", 3)
    pid = digits_project["id"]
    assert upload(admin, pid, [(n, d) for n, d, _ in digits_pngs(10)]).status_code == 201
    closes = []
    for _ in range(2):
        items = admin.post(f"/projects/{pid}/queue/lease", params={"limit": 1})
        closes.append(items.headers.get("connection"))
        r = admin.post(f"/projects/{pid}/labels", json={"sample_id": items.json()["items"][0]["sample_id"],
                                                         "label": "1"})
        assert r.status_code == 201
        closes.append(r.headers.get("connection"))
    # The TestClient is one "connection": its third answer closes it, the others keep it.
    assert closes == [None, None, "close", None]
    monkeypatch.setattr(deps, "MAX_REQUESTS_PER_CONNECTION", 0)
    assert all(admin.post(f"/projects/{pid}/queue/lease").headers.get("connection") is None for _ in range(5))
