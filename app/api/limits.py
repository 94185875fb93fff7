"""Request body limits per route, applied as the bytes arrive (413 naming the limit).

Every route takes at most ``max_json_bytes`` (1 MiB); a route marked ``@body_limit("max_login_bytes")``
or ``@body_limit("max_request_bytes")`` (the upload routes) takes that setting's bytes instead. The
route is known only once the router has matched it, which happens before the endpoint reads its body:
the limit is looked up at the first ``receive()``, so a ``Content-Length`` over it is refused before one
body byte is read, and a body without one is cut off as soon as it passes it.

An answer given before the body was read to its end (401 on an upload route, which authenticates
first; a 413) closes the connection: otherwise the server would go on reading, and throwing away, the
rest of a body it already refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings

DEFAULT_LIMIT = "max_json_bytes"
# An unread rest up to this size is cheaper to read and drop (uvicorn does) than to lose the connection.
LINGER_BYTES = 64 * 1024
E = TypeVar("E", bound=Callable)


def body_limit(setting: str) -> Callable[[E], E]:
    """Give a route the body limit of ``setting`` (a ``Settings`` field) instead of ``max_json_bytes``."""
    def mark(endpoint: E) -> E:
        endpoint.loupe_body_limit = setting  # type: ignore[attr-defined]
        return endpoint
    return mark


def describe(max_bytes: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if max_bytes >= size and max_bytes % size == 0:
            return f"{max_bytes} bytes ({max_bytes // size} {unit})"
    return f"{max_bytes} bytes"


def too_large_detail(max_bytes: int) -> str:
    return f"request body is over the limit of {describe(max_bytes)} for this route"


class BodyTooLarge(HTTPException):
    """Raised from receive(). An HTTPException, because FastAPI turns any other exception raised while
    it parses a form or JSON body into a 400 'error parsing the body'; this one it re-raises (413)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, too_large_detail(max_bytes), headers={"connection": "close"})
        self.max_bytes = max_bytes


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers") or []:
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _has_body(scope: Scope, length: int | None) -> bool:
    if length is not None:
        return length > 0
    return any(key == b"transfer-encoding" for key, _ in scope.get("headers") or [])


class BodySizeLimit:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    def limit_for(self, scope: Scope) -> int:
        return int(getattr(self.settings, getattr(scope.get("endpoint"), "loupe_body_limit", DEFAULT_LIMIT)))

    async def _reject(self, send: Send, max_bytes: int) -> None:
        body = json.dumps({"detail": too_large_detail(max_bytes)}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _declared_length(scope)
        state = {"seen": 0, "limit": 0, "done": not _has_body(scope, length), "started": False}

        async def limited_receive() -> Message:
            if not state["limit"]:  # the first call: the router has matched the route by now
                state["limit"] = self.limit_for(scope)
                if length is not None and length > state["limit"]:
                    raise BodyTooLarge(state["limit"])
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > state["limit"]:
                    raise BodyTooLarge(state["limit"])
                state["done"] = not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
                unread = None if length is None else length - state["seen"]
                if not state["done"] and (unread is None or unread > LINGER_BYTES):
                    message = {**message, "headers": [*_without_connection(message.get("headers", [])),
                                                      (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if not state["started"]:
                await self._reject(send, exc.max_bytes)


def _without_connection(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() != b"connection"]
