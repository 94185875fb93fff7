"""How ``loupe serve`` runs uvicorn, with timeouts for slow clients (issue 16, item 10).

uvicorn has no timeout on receiving a request: its keep-alive timer runs only between requests and is
reset by every byte received, and nothing limits how long (or how large) a request's headers may be.
One client sending a header byte every few seconds holds a connection for ever (slowloris), and a few
thousand hold every connection. ``LoupeHttpProtocol`` is uvicorn's httptools protocol with what nginx
calls client_header_timeout, client_body_timeout and a header size limit:

* a request's line and headers must arrive within ``header_timeout_s`` of its first byte (of the
  connection's opening, for its first request, so a connection that sends nothing is closed too);
* a body may pause at most ``body_timeout_s`` between two reads (not counted while the server itself
  has stopped reading, when the endpoint has not taken what came), so a slow but steady upload goes on;
* headers over ``max_header_bytes`` are answered 431.

Headers that do not arrive in time end with the connection closed (as nginx does); a body that stops
gets 408 when no answer was started, and the connection is closed.
This has to be the protocol: ASGI middleware runs only once the headers are complete.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.settings import Settings, get_settings

PROTOCOL = "app.server:LoupeHttpProtocol"


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What ``loupe serve`` passes to uvicorn besides host, port and workers."""
    # The protocol reads its timeouts from the settings itself: with --workers uvicorn imports it by name
    # in each process. Keep-alive: uvicorn's 5 s between requests, said here so it is in one place.
    # uvicorn's supervisor kills an API process that does not answer its ping within the health-check
    # timeout (5 s by default), and a process starting up (importing the app) answers only once it has
    # imported uvicorn's part: on a loaded machine (two cores, a pretraining and tests) that took longer,
    # and every API process was killed and restarted for minutes. 60 s: a hung process still goes.
    return {"http": PROTOCOL, "timeout_keep_alive": 5, "timeout_worker_healthcheck": 60}


class LoupeHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.header_timeout = settings.header_timeout_s
        self.body_timeout = settings.body_timeout_s
        self.max_header_bytes = settings.max_header_bytes
        self._timer: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._refused = False

    # -- timers

    def _arm(self, seconds: float, reason: str) -> None:
        self._disarm()
        if seconds > 0:
            self._timer = self.loop.call_later(seconds, self._expired, reason)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self, reason: str) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if reason == "body" and self.flow.read_paused:  # we stopped reading, not the client
            self._arm(self.body_timeout, "body")
            return
        self.logger.warning("%s: closing a connection whose request %s", self._peer(),
                            "headers did not arrive in time" if reason == "headers" else "body stopped")
        # Headers too slow: closed without a word, as nginx does (a browser's idle preconnection must not
        # read a 408 as the answer to the request it sends next). A body that stopped: 408 if no answer began.
        answering = reason == "body" and self.cycle is not None and not self.cycle.response_started
        self._close_with(408, "request timeout: the body stopped arriving" if answering else None)

    def _close_with(self, status: int, message: str | None) -> None:
        if message is not None:
            body = message.encode()
            self.transport.write(STATUS_LINE[status] + b"content-type: text/plain; charset=utf-8\r\n"
                                 b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
                                 + body)
        self.transport.close()

    def _peer(self) -> str:
        return f"{self.client[0]}:{self.client[1]}" if self.client else "client"

    # -- uvicorn's protocol and httptools' callbacks

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout, "headers")  # the first request's headers, from the opening

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if self._timer is None:  # a later request on a kept-alive connection: its first byte
            self._arm(self.header_timeout, "headers")

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        if not self._refused:
            super().on_header(name, value)

    def _count(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > self.max_header_bytes and not self._refused:
            self._refused = True
            self._disarm()
            self.logger.warning("%s: request headers over %d bytes: 431", self._peer(), self.max_header_bytes)
            self._close_with(431, f"request headers are over the limit of {self.max_header_bytes} bytes")

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        super().on_headers_complete()
        self._arm(self.body_timeout, "body")  # disarmed at once by on_message_complete if there is none

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        super().on_body(body)
        self._arm(self.body_timeout, "body")

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._disarm()
        super().on_message_complete()
