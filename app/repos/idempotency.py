"""Queries on Idempotency-Key records (``idempotency_records``): the answer stored under a caller's key."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.models import IdempotencyRecord

# Built once per dialect (every label call with a key runs it): sqlite's for SQLite, postgresql's else.
_T = cast(Table, IdempotencyRecord.__table__)
_REMEMBER = {pg: (postgresql.insert if pg else sqlite.insert)(_T)
             .on_conflict_do_nothing(index_elements=["user_id", "key"]).returning(_T.c.id)
             for pg in (False, True)}


def get(session: Session, user_id: int, key: str) -> IdempotencyRecord | None:
    return session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key))


def insert_unless_taken(session: Session, user_id: int, key: str, digest: str, status_code: int, response: Any,
                        now: datetime) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING``: True if this call stored the record, False if the key was taken."""
    ins = _REMEMBER[session.get_bind().dialect.name == "postgresql"]
    return session.execute(ins, {"user_id": user_id, "key": key, "request_hash": digest, "status_code": status_code,
                                 "response": response, "created_at": now}).first() is not None
