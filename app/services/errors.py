"""Errors a service raises; the API turns each into its status code and a ``detail`` message."""

from __future__ import annotations

from collections.abc import Iterable
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


class ImportStopped(ServiceError):
    """An import that failed after some of its batches committed. Those samples are kept (an import
    commits in short batches: app/services/imports.py), so the answer must say how many and what is
    missing, never the generic "nothing was changed". The API picks 503 (the database went away, worth a
    retry) or 500 from ``cause``."""

    status_code = 500

    def __init__(self, stored: int, cause: BaseException, missing: str) -> None:
        super().__init__(f"{stored} new samples were stored before it stopped and are kept; {missing}")
        self.stored, self.cause = stored, cause


def listed(values: Iterable[object], limit: int = 10, last: str = "and") -> str:
    """Names in a message as a person writes them: ``'a', 'b' and 'c'`` (numbers bare; ``last`` "or" for
    a choice), the first ``limit`` and how many more; never a Python list's ``['a', 'b']``."""
    items = [str(v) if isinstance(v, int) else f"'{v}'" for v in values]
    if len(items) > limit:
        return f"{', '.join(items[:limit])} and {len(items) - limit} more"
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}" if items else "none"
