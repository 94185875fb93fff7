"""Errors a service raises; the API turns each into its status code and a ``detail`` message."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status_code = 400
    # Response headers the answer needs (Retry-After of a 429, say): the API's handler sends them.
    headers: dict[str, str] = {}

    def __init__(self, detail: Any) -> None:
        super().__init__(detail if isinstance(detail, str) else str(detail))
        self.detail = detail


class NotFound(ServiceError):
    status_code = 404


class Forbidden(ServiceError):
    status_code = 403


class Conflict(ServiceError):
    status_code = 409


class Invalid(ServiceError):
    status_code = 422


class TooLarge(ServiceError):
    status_code = 413
