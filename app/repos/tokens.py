"""Queries on bearer tokens (``api_tokens``: sign-in sessions and named API tokens, stored hashed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import ApiToken, User


def with_user(session: Session, digest: str) -> tuple[ApiToken, User] | None:
    """The token with this digest and its user, in one round trip (every authenticated request asks)."""
    found = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                            .where(ApiToken.token_hash == digest)).first()
    return None if found is None else (found[0], found[1])


def by_digest(session: Session, digest: str) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))


def get(session: Session, token_id: int) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def newest_of(session: Session, user_id: int) -> ApiToken | None:
    return session.scalar(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc()))


def api_tokens(session: Session, user_id: int | None) -> list[tuple[ApiToken, str]]:
    """Named API tokens (not sign-in sessions) with their owners' names, of one user or (None) of all."""
    q = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).where(ApiToken.kind == "api")
    if user_id is not None:
        q = q.where(ApiToken.user_id == user_id)
    return [(t, u) for t, u in session.execute(q.order_by(ApiToken.id))]



def revoke_all(session: Session, user_id: int, when: datetime, *, kind: str | None = None,
               keep_digest: str | None = None) -> None:
    """Revoke a user's live tokens (of one kind, if given), all but the one with ``keep_digest``."""
    q = update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    if kind is not None:
        q = q.where(ApiToken.kind == kind)
    if keep_digest is not None:
        q = q.where(ApiToken.token_hash != keep_digest)
    session.execute(q.values(revoked_at=when).execution_options(synchronize_session=False))
