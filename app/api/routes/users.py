from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import AdminUser, SessionDep
from app.schemas.common import UserIn, UserOut
from app.services import auth as auth_service

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", status_code=201)
def create_user(body: UserIn, session: SessionDep, _admin: AdminUser) -> UserOut:
    user = auth_service.create_user(session, body.username, body.password, body.is_admin)
    return UserOut.model_validate(user)


@router.get("")
def list_users(session: SessionDep, _admin: AdminUser) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in auth_service.list_users(session)]
