from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, StringConstraints

from app.api import errors
from app.api.deps import AdminUser, BearerToken, CurrentUser, SessionDep, SettingsDep
from app.schemas.common import UserIn, UserOut
from app.services import auth as auth_service

router = APIRouter(prefix="/users", tags=["users"])

Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class UserPatch(BaseModel):
    is_active: bool | None = None  # False deactivates: the account's sessions and tokens stop at once
    password: Password | None = None  # a reset: every session and API token of the account is revoked


class PasswordChange(BaseModel):
    current_password: Password
    new_password: Password


@router.post("", status_code=201, responses=errors.responses(400, 401, 403, 409, 413, 422))
def create_user(body: UserIn, session: SessionDep, _admin: AdminUser) -> UserOut:
    user = auth_service.create_user(session, body.username, body.password, body.is_admin)
    return UserOut.model_validate(user)


@router.get("", responses=errors.responses(401, 403))
def list_users(session: SessionDep, _admin: AdminUser) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in auth_service.list_users(session)]


@router.post("/me/password", status_code=204, responses=errors.responses(400, 401, 403, 413, 422, 429))
def change_password(body: PasswordChange, request: Request, session: SessionDep, settings: SettingsDep,
                    user: CurrentUser, token: BearerToken) -> None:
    """Change your own password (the current one proves it is you). Your other sign-in sessions end;
    this one and your named API tokens stay. A wrong current password counts as a failed sign-in."""
    address = request.client.host if request.client else "unknown"
    auth_service.change_own_password(session, settings, user, body.current_password, body.new_password,
                                     token=token, address=address)


@router.patch("/{uid}", responses=errors.responses(400, 401, 403, 404, 413, 422))
def update_user(uid: int, body: UserPatch, session: SessionDep, admin: AdminUser) -> UserOut:
    """Deactivate or reactivate an account, or reset its password (admin)."""
    user = auth_service.update_user(session, admin, uid, is_active=body.is_active, password=body.password)
    return UserOut.model_validate(user)
