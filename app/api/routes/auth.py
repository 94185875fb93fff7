from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.api import errors
from app.api.deps import CSRF_COOKIE, SESSION_COOKIE, CurrentUser, SessionDep, SettingsDep
from app.api.limits import body_limit
from app.schemas.common import LoginIn, TokenOut, UserOut
from app.security import csrf_token
from app.services import auth as auth_service

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login", responses=errors.responses(400, 401, 413, 422, 429))
@body_limit("max_login_bytes")  # anyone may call it: a small body (issue 16, item 4)
def login(body: LoginIn, request: Request, response: Response, session: SessionDep,
          settings: SettingsDep) -> TokenOut:
    """Returns a bearer token; also sets an HttpOnly session cookie (and a CSRF cookie) for browsers.

    Failed sign-ins are throttled per account and per client address: 429 with ``Retry-After``."""
    address = request.client.host if request.client else "unknown"
    user = auth_service.sign_in(session, settings, body.username, body.password, address)
    token = auth_service.issue_token(session, user, name="login", kind="session", ttl_hours=settings.token_ttl_hours)
    max_age = settings.token_ttl_hours * 3600
    secure = settings.environment == "production"
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="lax", secure=secure)
    response.set_cookie(CSRF_COOKIE, csrf_token(settings.secret_key, token), max_age=max_age, httponly=False,
                        samesite="strict", secure=secure)
    return TokenOut(token=token, username=user.username, is_admin=user.is_admin)


@router.post("/logout", status_code=204, responses=errors.responses(401, 403))
def logout(request: Request, response: Response, user: CurrentUser, session: SessionDep) -> Response:
    header = request.headers.get("authorization", "")
    token = header.partition(" ")[2] if header else request.cookies.get(SESSION_COOKIE, "")
    auth_service.revoke_token(session, token)
    response.status_code = 204
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


@router.get("/me", responses=errors.responses(401))
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)
