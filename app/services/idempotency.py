"""Idempotency-Key: a retried request gets the first answer again instead of doing the work twice."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import IdempotencyRecord
from app.services.errors import Invalid


def request_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def replay(session: Session, user_id: int, key: str, digest: str) -> IdempotencyRecord | None:
    rec = session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
    )
    if rec is not None and rec.request_hash != digest:
        raise Invalid("this Idempotency-Key was already used for a different request")
    return rec


def remember(session: Session, user_id: int, key: str, digest: str, status_code: int, response: Any) -> None:
    session.add(
        IdempotencyRecord(user_id=user_id, key=key, request_hash=digest, status_code=status_code, response=response)
    )
    # Flushed now so that a concurrent request with the same key fails on the unique constraint
    # before either commits its labels.
    session.flush()
