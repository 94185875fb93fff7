"""SessionDep: one transaction per request, committed before the answer is sent (by the dependency,
or by a route that calls ``finish`` itself), rolled back when the route raises, and the work that
waits for the commit (tasks to send) runs once, only after a commit."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.deps import SessionDep, finish
from app.db import after_commit, on_rollback, session_scope
from app.models import User
from app.security import hash_password


def _app(settings, events: list[str]) -> FastAPI:
    app = FastAPI()
    app.state.settings = settings

    def add(session, name: str) -> None:
        session.add(User(username=name, password_hash=hash_password("password-123")))
        session.flush()
        after_commit(session, lambda: events.append(f"sent {name}"))
        on_rollback(session, lambda: events.append(f"undone {name}"))

    @app.post("/by-dependency/{name}")
    def by_dependency(name: str, session: SessionDep) -> dict:
        add(session, name)
        return {"ok": True}

    @app.post("/by-route/{name}")
    async def by_route(name: str, session: SessionDep) -> dict:
        add(session, name)
        finish(session)
        events.append(f"answered {name}")
        return {"ok": True}

    @app.post("/fails/{name}")
    def fails(name: str, session: SessionDep) -> dict:
        add(session, name)
        raise HTTPException(409, "no")

    @app.get("/reads")
    def reads(session: SessionDep) -> dict:
        return {"n": len(session.scalars(select(User.id)).all())}

    return app


def _users(url: str) -> set[str]:
    with session_scope(url) as s:
        return set(s.scalars(select(User.username)))


def test_commit_rollback_and_after_commit_work(settings):
    events: list[str] = []
    with TestClient(_app(settings, events)) as client:
        assert client.post("/by-dependency/ann").status_code == 200
        assert _users(settings.database_url) == {"ann"} and events == ["sent ann"]
        events.clear()
        assert client.post("/by-route/bob").status_code == 200
        # Committed (and its task sent) before the route went on to answer, and only once.
        assert events == ["sent bob", "answered bob"]
        assert _users(settings.database_url) == {"ann", "bob"}
        events.clear()
        assert client.post("/fails/cid").status_code == 409
        assert _users(settings.database_url) == {"ann", "bob"} and events == ["undone cid"]
        events.clear()
        for _ in range(35):  # a read-only request neither commits nor keeps its connection (pool: 30)
            assert client.get("/reads").json() == {"n": 2}
        assert events == []
