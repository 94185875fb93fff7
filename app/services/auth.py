"""Accounts and bearer tokens."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from app.models import ApiToken, User
from app.models.base import utcnow
from app.repos import tokens as token_repo
from app.repos import users as user_repo
from app.security import HashBusy, hash_password, new_token, token_digest, verify_password
from app.services import login_throttle
from app.services.errors import Conflict, Invalid, NotFound, ServiceError
from app.settings import Settings


class Unauthenticated(ServiceError):
    status_code = 401

# Verifying against a real hash when the user is unknown keeps response times alike, so timing does
# not tell an attacker which usernames exist.
_DUMMY_HASH = hash_password("not-a-real-password")


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = user_repo.by_username(session, username)
    if user is None or not user.is_active:
        verify_password(_DUMMY_HASH, password)
        return None
    return user if verify_password(user.password_hash, password) else None


def sign_in(session: Session, settings: Settings, username: str, password: str, address: str) -> User:
    """The account, if the password is right and neither it nor the address is throttled.

    Unauthenticated (401) for a wrong password, login_throttle.Throttled (429) past the failures
    allowed, or when every password-hashing slot stays busy (a flood of sign-ins)."""
    throttle = login_throttle.for_settings(settings)
    throttle.check(username, address)
    try:
        user = authenticate(session, username, password)
    except HashBusy:
        raise login_throttle.Throttled("the server is busy checking other sign-ins; retry in a second", 1) \
            from None
    if user is None:
        throttle.failed(username, address)
        raise Unauthenticated("wrong username or password")
    return user


def issue_token(session: Session, user: User, *, name: str, kind: str, ttl_hours: int | None) -> str:
    token = new_token()
    expires = utcnow() + timedelta(hours=ttl_hours) if ttl_hours else None
    session.add(ApiToken(user_id=user.id, name=name, kind=kind, token_hash=token_digest(token), expires_at=expires))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    found = token_repo.with_user(session, token_digest(token))
    return None if found is None else token_user(*found)


def token_user(row: ApiToken, user: User) -> User | None:
    """The token's user if the token is live and the account active, else None."""
    now = utcnow()
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at < now):
        return None
    if not user.is_active:
        return None
    if row.kind == "api" and (row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5)):
        row.last_used_at = now  # coarse on purpose: no write on every request
    return user


def revoke_token(session: Session, token: str) -> None:
    row = token_repo.by_digest(session, token_digest(token))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()


def validate_password(password: str) -> None:
    if len(password) < 8:
        raise Invalid("password must be at least 8 characters long")


def create_user(session: Session, username: str, password: str, is_admin: bool = False) -> User:
    validate_password(password)
    if user_repo.username_taken(session, username):
        raise Conflict(f"username '{username}' is taken")
    return user_repo.add(session, User(username=username, password_hash=hash_password(password), is_admin=is_admin))


def create_user_unless_taken(session: Session, username: str, password: str, is_admin: bool = False) -> User | None:
    """The new account, or None if the username is taken (``loupe init`` run again)."""
    if user_repo.username_taken(session, username):
        return None
    return create_user(session, username, password, is_admin)


def list_users(session: Session) -> list[User]:
    return user_repo.list_all(session)


def set_password(session: Session, username: str, password: str) -> User:
    validate_password(password)
    user = user_repo.by_username(session, username)
    if user is None:
        raise NotFound(f"no user named '{username}'")
    user.password_hash = hash_password(password)
    session.flush()
    return user
