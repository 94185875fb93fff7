"""Errors as the client should see them, and as the OpenAPI schema documents them.

A database error is either the client's own bad value (422) or a database that is away for a moment
(503, retry), never an anonymous 500. And the OpenAPI schema says what a 422 really holds: FastAPI
documents only its validation-error list, but a rule a service enforces answers ``{"detail": "..."}``.

Every route names the error answers it can give with ``responses=errors.responses(401, 404, ...)``:
FastAPI documents only 2xx and 422 by itself, and a client (or schemathesis'
``status_code_conformance``) should find a 404 or 409 in the schema, not meet it by surprise. What each
access dependency answers (app/api/deps.py): ``CurrentUser`` 401; ``AdminUser`` 401, 403;
``ProjectMember`` 401, 404; ``ProjectLabeller``, ``ProjectReviewer``, ``ProjectAdmin`` 401, 403, 404.
Every route may also answer 503 (the database away for a moment), which ``responses`` always adds.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError

from app.services.errors import ImportStopped

log = logging.getLogger(__name__)

UNAVAILABLE = "the database is unavailable for a moment; nothing was changed, retry shortly"


class ErrorOut(BaseModel):
    """Every error answer: ``detail`` says what was refused and why (a 422 of a service rule may give
    an object, such as the files an import rejected and why each)."""

    detail: str | list[Any] | dict[str, Any] = Field(description="what was refused, and why")


_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}}
# The one list of error answers the API documents: what each status means here.
_ERRORS: dict[int, dict[str, Any]] = {
    400: {"description": "the request body could not be parsed (JSON that is not UTF-8, a malformed multipart form)"},
    401: {"description": "not signed in, or the token is invalid, expired or revoked, or the account deactivated",
          "headers": {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}},
    403: {"description": "signed in, but this account may not do this (its role; or, signed in by cookie, "
                         "the X-CSRF-Token header is missing or wrong)"},
    404: {"description": "not found, or in a project the caller may not see (the same answer for both)"},
    409: {"description": "conflicts with the current state (it exists already, or is being processed)"},
    413: {"description": "the request body is over its limit"},
    422: {"description": "the request is malformed, or a rule refused it (`detail` says which and why)"},
    429: {"description": "too many attempts: wait for Retry-After seconds", "headers": _RETRY_AFTER},
    503: {"description": "the database is unavailable for a moment; nothing was changed (an import says how many "
                         "samples it stored before it stopped), retry",
          "headers": _RETRY_AFTER},
}

# The schema FastAPI gives its own 422s (widened to a rule's detail by _document_error_shapes below).
_VALIDATION = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer ``codes`` (and 503): each with its meaning and the
    ``{"detail": ...}`` body. A 422 keeps FastAPI's own schema (validation errors or a rule's detail)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in (*codes, 503):
        out[code] = {**_ERRORS[code], **(_VALIDATION if code == 422 else {"model": ErrorOut})}
    return out


def files(description: str, *media_types: str) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entry of a 200 whose body is a file of one of ``media_types``, not JSON (the
    route's ``response_class`` has no media type of its own, so FastAPI documents none by itself)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"description": description, "content": {m: binary for m in media_types}}}


def _is_unavailable(exc: DBAPIError) -> bool:
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    # psycopg raises OperationalError for a lost or refused connection, an admin shutdown and a
    # serialization failure: each worth a retry. On SQLite it is a lock held too long. Not so a statement
    # psycopg refuses to send (over 65,535 parameters): a retry fails alike, so it is our error, a 500.
    text = str(exc.orig).lower()
    if "number of parameters must be between" in text:
        return False
    return exc.orig.__class__.__module__.startswith("psycopg") or "locked" in text or "busy" in text


def _document_unparsable_bodies(schema: dict) -> None:
    """Every operation that takes a body can answer 400 (FastAPI's "error parsing the body", before any
    route code runs): documented here once for all of them, not by each route remembering to."""
    answer = {"description": _ERRORS[400]["description"],
              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
    for item in schema.get("paths", {}).values():
        for op in item.values():
            if isinstance(op, dict) and "requestBody" in op:
                op.setdefault("responses", {}).setdefault("400", answer)


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
            _document_unparsable_bodies(schema)
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

    @app.exception_handler(IntegrityError)
    async def _integrity_error(request: Request, exc: IntegrityError) -> JSONResponse:
        # A unique name or key another request stored between a service's check and this insert: the
        # services check first, so only a race lands here. A conflict to resolve, not an outage to retry.
        log.info("integrity error during %s %s: %s", request.method, request.url.path, exc.orig)
        return JSONResponse({"detail": "the request conflicts with a row stored at the same moment (a name or "
                             "key already taken); nothing was changed"}, status_code=409)

    @app.exception_handler(OverflowError)
    async def _overflow(_request: Request, _exc: OverflowError) -> JSONResponse:
        # SQLite (the driver) refuses integers past 64 bits before the query runs.
        return JSONResponse({"detail": "a number in the request is out of range"}, status_code=422)

    @app.exception_handler(ImportStopped)
    async def _import_stopped(request: Request, exc: ImportStopped) -> JSONResponse:
        # Part of the import was committed: say so, with the cause, instead of "nothing was changed".
        if isinstance(exc.cause, DBAPIError) and _is_unavailable(exc.cause):
            log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc.cause.orig)
            return JSONResponse({"detail": f"the database became unavailable during the import: {exc.detail}"},
                                status_code=503, headers={"Retry-After": "1"})
        log.error("import failed during %s %s", request.method, request.url.path, exc_info=exc.cause)
        return JSONResponse({"detail": f"the import failed (an internal error): {exc.detail}"}, status_code=500)

    @app.exception_handler(DBAPIError)
    async def _db_error(request: Request, exc: DBAPIError) -> JSONResponse:
        if _is_unavailable(exc):
            log.warning("database unavailable during %s %s: %s", request.method, request.url.path, exc.orig)
            return JSONResponse({"detail": UNAVAILABLE}, status_code=503, headers={"Retry-After": "1"})
        log.error("database error during %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": "internal database error"}, status_code=500)
