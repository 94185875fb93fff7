"""API tokens for scripts and integrations: named, listed, revoked; stored hashed, shown once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.models import ApiToken, User
from app.models.base import utcnow
from app.repos import tokens as token_repo
from app.repos import users as users_repo
from app.services import auth as auth_service
from app.services.errors import Forbidden, NotFound


def create(session: Session, user: User, name: str, username: str | None,
           expires_at: datetime | None = None) -> tuple[ApiToken, User, str]:
    """A new API token of ``user`` (or, for an admin, of ``username``), valid until revoked or until
    ``expires_at``: its row, owner and secret."""
    expires_at = auth_service.expiry_ahead(expires_at)
    owner = user
    if username and username != user.username:
        if not user.is_admin:
            raise Forbidden("only an admin creates tokens for other users")
        found = users_repo.by_username(session, username)
        if found is None:
            raise NotFound(f"no user named '{username}'")
        owner = found
    secret = auth_service.issue_token(session, owner, name=name, kind="api", expires_at=expires_at)
    row = token_repo.newest_of(session, owner.id)
    assert row is not None
    return row, owner, secret


def listed(session: Session, user: User, everyone: bool) -> list[tuple[ApiToken, str]]:
    """The user's API tokens, or with ``everyone`` (an admin only) all of them, with owners' names."""
    return token_repo.api_tokens(session, None if everyone and user.is_admin else user.id)


def revoke(session: Session, user: User, token_id: int) -> None:
    """Revoke a token of one's own (an admin: anyone's); others' are not found."""
    row = token_repo.get(session, token_id)
    if row is None or (row.user_id != user.id and not user.is_admin):
        raise NotFound(f"token {token_id} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
