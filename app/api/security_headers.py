"""Security headers on every response (issue 16, item 8).

Every response (API, frontend files, errors) forbids framing (X-Frame-Options and CSP frame-ancestors) and
MIME sniffing, sends the referrer to this origin only, and carries as a header the Content-Security-Policy
that frontend/index.html states in its meta tag (a meta tag cannot say frame-ancestors). A response that
sets its own policy keeps it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The frontend's meta tag, directive for directive (tests/hardening/test_headers_and_docs.py compares them).
FRONTEND_POLICY = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; connect-src 'self'; "
                   "script-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                   "frame-ancestors 'none'")

_FIXED = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
          (b"referrer-policy", b"same-origin")]
_CSP = b"content-security-policy"


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in dict(_FIXED)]
                if not any(k.lower() == _CSP for k, _ in headers):
                    headers.append((_CSP, FRONTEND_POLICY.encode()))
                message = {**message, "headers": headers + _FIXED}
            await send(message)

        await self.app(scope, receive, send_with_headers)

