"""The FastAPI application: REST API under /api/v1, the browser UI at /."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from app.api import errors as api_errors
from app.api.deps import AnswerCounts
from app.api.limits import BodySizeLimit
from app.api.routes import (
    auth,
    backbones,
    data_checks,
    explore,
    health,
    jobs,
    label_issues,
    labels,
    notes,
    projects,
    queue,
    results,
    samples,
    team,
    texts,
    tokens,
    users,
    versions,
)
from app.api.security_headers import SecurityHeaders, install_docs
from app.services.errors import ServiceError
from app.settings import Settings, get_settings

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    settings.ensure_dirs()
    app = FastAPI(
        title="Loupe",
        version="0.1.0",
        description="Active-learning labelling that learns a representation of your own images.",
        docs_url=None,  # install_docs: Swagger UI from the package, not a CDN
        redoc_url=None,  # ReDoc comes only from a CDN, which the CSP refuses
        openapi_url="/api/v1/openapi.json",
    )
    app.state.settings = settings
    app.state.answers = AnswerCounts()  # answers per keep-alive connection (deps.recycle_connection)

    @app.exception_handler(ServiceError)
    async def _service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Same shape as FastAPI's own, minus the echoed input (it may hold a password).
        errors = [{k: v for k, v in e.items() if k not in ("input", "ctx", "url")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    api_errors.install(app)

    for module in (health, auth, users, tokens, projects, samples, labels, queue, jobs, results, versions, explore,
                   team, backbones, label_issues, data_checks, notes, texts):
        app.include_router(module.router, prefix="/api/v1")

    install_docs(app)
    if FRONTEND_DIR.is_dir():
        app.mount("/", StaticFiles(directory=FRONTEND_DIR, html=True), name="frontend")

    app.add_middleware(BodySizeLimit, settings=settings)  # per route: app/api/limits.py
    app.add_middleware(SecurityHeaders)  # outermost of ours: a 413 gets the headers too
    return app
