"""Accounts and bearer tokens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from sqlalchemy.orm import Session, object_session

from app.db import after_commit, is_read_only, write_now_or_skip
from app.models import ApiToken, User
from app.models.base import utcnow
from app.repos import tokens as token_repo
from app.repos import users as user_repo
from app.security import HashBusy, hash_password, new_token, token_digest, verify_password
from app.services import login_throttle
from app.services.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from app.settings import Settings

T = TypeVar("T")


class Unauthenticated(ServiceError):
    """The caller's credentials do not (or no longer) sign them in: 401, saying why."""

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
    user = _throttled(settings, username, address, lambda: authenticate(session, username, password))
    if user is None:
        raise Unauthenticated("wrong username or password")
    return user


def _throttled(settings: Settings, username: str, address: str, check: Callable[[], T]) -> T:
    """``check()`` (a password check) unless throttled; a falsy answer counts as a failed sign-in."""
    throttle = login_throttle.for_settings(settings)
    throttle.check(username, address)
    try:
        found = check()
    except HashBusy:
        raise login_throttle.Throttled("the server is busy checking other sign-ins; retry in a second", 1) \
            from None
    if not found:
        throttle.failed(username, address)
    return found


def issue_token(session: Session, user: User, *, name: str, kind: str, ttl_hours: int | None = None,
                expires_at: datetime | None = None) -> str:
    token = new_token()
    expires = utcnow() + timedelta(hours=ttl_hours) if ttl_hours else expires_at
    session.add(ApiToken(user_id=user.id, name=name, kind=kind, token_hash=token_digest(token), expires_at=expires))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    found = token_repo.with_user(session, token_digest(token))
    return None if found is None else token_user(*found)


def token_user(row: ApiToken, user: User) -> User:
    """The token's user; Unauthenticated (401), saying why, if the token is revoked or expired or the
    account deactivated."""
    now = utcnow()
    if row.revoked_at is not None:
        raise Unauthenticated("this token was revoked (signed out, or the password was reset); sign in again")
    if row.expires_at is not None and row.expires_at < now:
        raise Unauthenticated(f"this token expired at {row.expires_at.isoformat(timespec='seconds')}; "
                              "sign in again or make a new API token")
    if not user.is_active:
        raise Unauthenticated(f"the account '{user.username}' is deactivated; ask an admin")
    if row.kind == "api" and (row.last_used_at is None or now - row.last_used_at > timedelta(minutes=5)):
        _note_use(row, now)  # coarse on purpose: no write on every request
    return user


def _note_use(row: ApiToken, now: datetime) -> None:
    """Record the token's use: in the request's transaction if it writes anyway; after a read-only
    one's commit in a short transaction of its own, skipped on SQLite if a writer holds the lock (a
    read never waits for the write lock; the next request records it)."""
    session = object_session(row)
    if session is None or not is_read_only(session):
        row.last_used_at = now
        return
    token_id = row.id

    def touch(own: Session) -> None:
        found = own.get(ApiToken, token_id)
        if found is not None:
            found.last_used_at = now

    after_commit(session, lambda: write_now_or_skip(session, touch))


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
    """A reset (CLI or admin): the new password, and every session and API token of the account revoked."""
    user = user_repo.by_username(session, username)
    if user is None:
        raise NotFound(f"no user named '{username}'")
    return _reset_password(session, user, password)


def _reset_password(session: Session, user: User, password: str) -> User:
    validate_password(password)
    user.password_hash = hash_password(password)
    token_repo.revoke_all(session, user.id, utcnow())
    session.flush()
    return user


def update_user(session: Session, admin: User, user_id: int, *, is_active: bool | None,
                password: str | None) -> User:
    """An admin's change to an account: (de)activate it, or reset its password. Deactivating revokes
    its sessions and tokens, so a later reactivation does not bring them back."""
    user = user_repo.get(session, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    if is_active is not None and is_active != user.is_active:
        if user.id == admin.id:
            raise Invalid("you cannot deactivate your own account")
        user.is_active = is_active
        if not is_active:
            token_repo.revoke_all(session, user.id, utcnow())
    if password is not None:
        _reset_password(session, user, password)
    session.flush()
    return user


def change_own_password(session: Session, settings: Settings, user: User, current: str, new: str, *,
                        token: str, address: str) -> None:
    """A user's own change, proved by the current password (a wrong one counts as a failed sign-in).
    Their other sign-in sessions end; this one and their named API tokens stay."""
    validate_password(new)
    if not _throttled(settings, user.username, address, lambda: verify_password(user.password_hash, current)):
        raise Forbidden("the current password is wrong")
    user.password_hash = hash_password(new)
    token_repo.revoke_all(session, user.id, utcnow(), kind="session", keep_digest=token_digest(token))
    session.flush()


def expiry_ahead(expires_at: datetime | None) -> datetime | None:
    """A requested token expiry, in UTC (a time without zone is taken as UTC); Invalid if it is past."""
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    if expires_at <= utcnow():
        raise Invalid("expires_at must be in the future")
    return expires_at
