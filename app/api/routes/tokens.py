"""API tokens for scripts and integrations: named, listed, revoked; stored hashed, shown once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, StringConstraints
from sqlalchemy import select

from app.api.deps import CurrentUser, SessionDep
from app.models import ApiToken, User
from app.models.base import utcnow
from app.services import auth as auth_service
from app.services.errors import Forbidden, NotFound

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenIn(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    username: Annotated[str | None, StringConstraints(max_length=64)] = None  # admins may create for others


class TokenInfo(BaseModel):
    id: int
    name: str
    username: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewToken(TokenInfo):
    token: str  # the only time it is ever shown


@router.post("", status_code=201)
def create_token(body: TokenIn, session: SessionDep, user: CurrentUser) -> NewToken:
    owner = user
    if body.username and body.username != user.username:
        if not user.is_admin:
            raise Forbidden("only an admin creates tokens for other users")
        owner = session.scalar(select(User).where(User.username == body.username))
        if owner is None:
            raise NotFound(f"no user named '{body.username}'")
    token = auth_service.issue_token(session, owner, name=body.name, kind="api", ttl_hours=None)
    row = session.scalar(select(ApiToken).where(ApiToken.user_id == owner.id).order_by(ApiToken.id.desc()))
    assert row is not None
    return NewToken(id=row.id, name=row.name, username=owner.username, created_at=row.created_at,
                    last_used_at=None, revoked_at=None, token=token)


@router.get("")
def list_tokens(session: SessionDep, user: CurrentUser, all: bool = False) -> list[TokenInfo]:
    """Your API tokens (an admin may ask for everyone's with ``all=true``); never the secrets."""
    q = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).where(ApiToken.kind == "api")
    if not (all and user.is_admin):
        q = q.where(ApiToken.user_id == user.id)
    return [TokenInfo(id=t.id, name=t.name, username=u, created_at=t.created_at, last_used_at=t.last_used_at,
                      revoked_at=t.revoked_at) for t, u in session.execute(q.order_by(ApiToken.id))]


@router.delete("/{tid}", status_code=204)
def revoke(tid: int, session: SessionDep, user: CurrentUser) -> None:
    row = session.get(ApiToken, tid)
    if row is None or (row.user_id != user.id and not user.is_admin):
        raise NotFound(f"token {tid} not found")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
