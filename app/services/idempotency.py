"""Idempotency-Key: a retried request gets the first answer again instead of doing the work twice."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy.orm import Session

from app.models import IdempotencyRecord
from app.models.base import utcnow
from app.repos import idempotency as idempotency_repo
from app.services.errors import Invalid


def request_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def replay(session: Session, user_id: int, key: str, digest: str) -> IdempotencyRecord | None:
    rec = idempotency_repo.get(session, user_id, key)
    if rec is not None and rec.request_hash != digest:
        raise Invalid("this Idempotency-Key was already used for a different request")
    return rec


def remember(session: Session, user_id: int, key: str, digest: str, status_code: int, response: Any) -> bool:
    """Store the answer under the key, unless the key is taken: then store nothing and return False.

    One statement (``INSERT ... ON CONFLICT DO NOTHING``). On PostgreSQL a request whose key another
    transaction has just claimed waits for it to end: False if it committed, stored if it rolled back.
    So of two requests with one key, one stores its work and the other can replay its answer."""
    return idempotency_repo.insert_unless_taken(session, user_id, key, digest, status_code, response, utcnow())
