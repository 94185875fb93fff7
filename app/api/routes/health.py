from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app import task_client
from app.api.deps import SettingsDep
from app.db import get_engine

router = APIRouter(tags=["health"])


@router.get("/health", responses={503: {"description": "the database does not answer (the body says so)"}})
def health(settings: SettingsDep) -> JSONResponse:
    """Liveness and readiness: 200 when the database answers; the broker is reported, not required,
    because labelling keeps working while it is down."""
    try:
        with get_engine(settings.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # noqa: BLE001
        database = f"unavailable: {type(exc).__name__}"
    broker = "ok" if task_client.broker_reachable(settings.broker_url, settings.broker_timeout_s) else "unavailable"
    ok = database == "ok"
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "database": database, "broker": broker},
        status_code=200 if ok else 503,
    )
