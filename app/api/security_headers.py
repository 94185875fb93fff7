"""Security headers on every response, and the API docs served from the package (issue 16, item 8).

Every response (API, frontend files, errors, an unhandled 500 too) forbids framing (X-Frame-Options and CSP
frame-ancestors) and MIME sniffing, sends the referrer to this origin only, and carries as a header the
Content-Security-Policy that frontend/index.html states in its meta tag (a meta tag cannot say frame-
ancestors). A response that sets its own policy keeps it: /docs allows its one inline script by hash. Swagger
UI's files come from the fastapi-swagger package, so /docs works offline and loads nothing from a CDN.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The frontend's meta tag, directive for directive (tests/hardening/test_headers_and_docs.py compares them).
FRONTEND_POLICY = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; connect-src 'self'; "
                   "script-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                   "frame-ancestors 'none'")
DOCS_ASSETS = "/docs-assets"

_FIXED = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
          (b"referrer-policy", b"same-origin")]
_CSP = b"content-security-policy"
INTERNAL_ERROR = "internal server error: the server log has the details"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in dict(_FIXED)]
                if not any(k.lower() == _CSP for k, _ in headers):
                    headers.append((_CSP, FRONTEND_POLICY.encode()))
                message = {**message, "headers": headers + _FIXED}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette's outermost error middleware would answer this 500 without our headers; answer it
            # here, then re-raise so the error is still logged (that middleware sends nothing more).
            if not started:
                await JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)(scope, receive, send_with_headers)
            raise


def _docs_policy(html: str) -> str:
    """The frontend's policy, plus Swagger UI's one inline script (by its hash, not 'unsafe-inline')."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, re.S))
    return FRONTEND_POLICY.replace("script-src 'self'", f"script-src 'self' {hashes}")


def install_docs(app: FastAPI) -> None:
    """Swagger UI at /docs with its files from the fastapi-swagger package (FastAPI's self-hosting recipe).
    Call before the frontend's catch-all mount at /."""
    import fastapi_swagger

    # fastapi-swagger ships Swagger UI 5 (swagger-ui-bundle's 4.15 cannot read FastAPI's OpenAPI 3.1).
    assets = Path(fastapi_swagger.__file__).parent / "resources"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{app.title} - API docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js", swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None})  # no badge fetched from validator.swagger.io
        page.headers["Content-Security-Policy"] = _docs_policy(bytes(page.body).decode())
        return page
