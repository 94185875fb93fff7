"""API tokens for scripts and integrations: named, listed, revoked; stored hashed, shown once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, StringConstraints

from app.api import errors
from app.api.deps import CurrentUser, SessionDep
from app.services import tokens as token_service

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenIn(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    username: Annotated[str | None, StringConstraints(max_length=64)] = None  # admins may create for others
    expires_at: datetime | None = None  # none: valid until revoked; past it the token answers 401 "expired"


class TokenInfo(BaseModel):
    id: int
    name: str
    username: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None = None


class NewToken(TokenInfo):
    token: str  # the only time it is ever shown


@router.post("", status_code=201, responses=errors.responses(400, 401, 403, 404, 413, 422))
def create_token(body: TokenIn, session: SessionDep, user: CurrentUser) -> NewToken:
    row, owner, token = token_service.create(session, user, body.name, body.username, body.expires_at)
    return NewToken(id=row.id, name=row.name, username=owner.username, created_at=row.created_at,
                    last_used_at=None, revoked_at=None, expires_at=row.expires_at, token=token)


@router.get("", responses=errors.responses(401))
def list_tokens(session: SessionDep, user: CurrentUser, all: bool = False) -> list[TokenInfo]:
    """Your API tokens (an admin may ask for everyone's with ``all=true``); never the secrets."""
    return [TokenInfo(id=t.id, name=t.name, username=u, created_at=t.created_at, last_used_at=t.last_used_at,
                      revoked_at=t.revoked_at, expires_at=t.expires_at)
            for t, u in token_service.listed(session, user, all)]


@router.delete("/{tid}", status_code=204, responses=errors.responses(401, 403, 404))
def revoke(tid: int, session: SessionDep, user: CurrentUser) -> None:
    token_service.revoke(session, user, tid)
