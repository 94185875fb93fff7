"""Errors as the client should see them.

A database error is either the client's own bad value (422) or a database that is away for a moment
(503, retry), never an anonymous 500. And the OpenAPI schema says what a 422 really holds: FastAPI
documents only its validation-error list, but a rule a service enforces answers ``{"detail": "..."}``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

UNAVAILABLE = "the database is unavailable for a moment; nothing was changed, retry shortly"


def _is_unavailable(exc: DBAPIError) -> bool:
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    # psycopg raises OperationalError for a lost or refused connection, an admin shutdown and a
    # serialization failure: each worth a retry. On SQLite it is a lock held too long.
    text = str(exc.orig).lower()
    return exc.orig.__class__.__module__.startswith("psycopg") or "locked" in text or "busy" in text


def _document_error_shapes(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            error = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
            if error is not None:
                listed = error["properties"]["detail"]
                error["properties"]["detail"] = {
                    "title": "Detail", "anyOf": [listed, {"type": "string"}, {"type": "object"}],
                    "description": "validation errors, or what a service rule refused and why"}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    _document_error_shapes(app)

    @app.exception_handler(DataError)
    async def _data_error(_request: Request, exc: DataError) -> JSONResponse:
        # PostgreSQL refused a value from the request: an integer past its column, a NUL character.
        return JSONResponse({"detail": "a value in the request cannot be stored or compared: "
                             f"{str(exc.orig).splitlines()[0][:200]}"}, status_code=422)

    @app.exception_handler(OverflowError)
    async def _overflow(_request: Request, _exc: OverflowError) -> JSONResponse:
        # SQLite (the driver) refuses integers past 64 bits before the query runs.
        return JSONResponse({"detail": "a number in the request is out of range"}, status_code=422)

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if _is_unavailable(exc):
            log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc.orig)
            return JSONResponse({"detail": UNAVAILABLE}, status_code=503, headers={"Retry-After": "1"})
        log.error("database error during %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal database error"}, status_code=500)
