"""Queries on bearer tokens (``api_tokens``: sign-in sessions and named API tokens, stored hashed)."""

from __future__ import annotations

from sqlalchemy import select
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

