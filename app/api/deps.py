"""Request dependencies, declared once as ``Annotated`` aliases so routes stay thin.

How to use the access checks (a route never hands a service a function to check access with):

* A route under ``/projects/{pid}`` takes one of ``ProjectMember`` (may see it), ``ProjectLabeller``
  (may label: admin, annotator, reviewer), ``ProjectReviewer`` (admin or reviewer) or ``ProjectAdmin``
  (an admin account). Each is an ``Access``: ``.user``, ``.project``, ``.role``; the path parameter must
  be called ``pid``. It answers 401, 404 (the caller may not know the project exists) or 403 before
  the route runs::

      @router.get("/projects/{pid}/things")
      def things(access: ProjectMember, session: SessionDep) -> list[Thing]:
          return thing_service.list(session, access.project)

* A route that names another resource (a label, a review, a sample) finds the resource's project
  itself, then calls ``require(session, user, project_id, need)``, best in a dependency of its own
  (``LabelTarget = Annotated[Label, Depends(label_target)]``), and hands the service what it found.
* The two hot routes (POST queue/lease, POST labels) keep ``project_access``: token, user, project and role
  in one query, inside their one thread-pool hop.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.db import get_read_sessionmaker, get_sessionmaker, run_after_commit, run_on_rollback
from app.models import Project, User
from app.security import csrf_matches
from app.services import auth as auth_service
from app.services import projects as project_service
from app.services.errors import NotFound
from app.settings import Settings

SESSION_COOKIE = "loupe_session"
CSRF_COOKIE = "loupe_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


# async: a plain attribute read, so it need not cost a hop to the thread pool (a sync dependency does).
async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def finish(session: Session) -> None:
    """Commit the request's transaction, then run what waited for the commit (tasks to send).

    A route that ends its work in a worker thread anyway calls this there, so that the commit costs
    no hop of its own to the thread pool (each hop is CPU, and a wait for a thread under load)."""
    try:
        session.commit()
        run_after_commit(session)
    except BaseException:
        abort(session)
        raise


def abort(session: Session) -> None:
    session.rollback()
    run_on_rollback(session)


def _finish_and_close(session: Session) -> None:
    try:
        finish(session)
    finally:
        session.close()


def _abort_and_close(session: Session) -> None:
    try:
        abort(session)
    finally:
        session.close()


# No GET writes (the queue leases on a POST): a link on another site, which the browser follows with
# the cookie and without the CSRF header, can change nothing.
READ_METHODS = frozenset({"GET", "HEAD"})


def _reads_only(request: Request) -> bool:
    return request.method in READ_METHODS


async def get_session(request: Request, settings: SettingsDep) -> AsyncIterator[Session]:
    """One transaction per request: committed when the route returns, rolled back if it raises.

    A GET or HEAD only reads: its session is read-only, so on
    SQLite it neither waits for nor holds the write lock, and a write in it raises (app/db.py).

    An async generator: making the Session does no I/O, so only the commit (or rollback) goes to the
    thread pool, and not even that when the route already committed (``finish``)."""
    url = settings.database_url
    session = (get_read_sessionmaker(url) if _reads_only(request) else get_sessionmaker(url))()
    try:
        yield session
    except BaseException:
        await run_in_threadpool(_abort_and_close, session)
        raise
    if session.in_transaction() or session.info.get("after_commit") or session.info.get("on_rollback"):
        await run_in_threadpool(_finish_and_close, session)
    else:
        session.close()  # nothing to commit: the connection went back to the pool at the commit


# scope="function": the commit happens when the route returns, before the response is sent, so a client
# never sees a 201 for a write that is not (yet) durable, and its next request finds what it wrote.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


# async: reading headers and cookies is no I/O, so it costs no hop to the thread pool.
async def get_bearer_token(request: Request) -> str:
    """The caller's token (header or cookie, the latter with its CSRF check); 401 if there is none.
    Whether it is valid is the lookup's business (``get_current_user``, or a route that looks the
    token up with what else it needs: ``project_access``)."""
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("Authorization header must be 'Bearer <token>'")
        return token
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token:
        raise _unauthorized("not authenticated: send 'Authorization: Bearer <token>' or sign in")
    # A cookie is sent by the browser on any site's behalf, so a state-changing request must also
    # prove it was made by our page (double-submit CSRF token; SameSite=Lax covers the rest).
    # The token is signed to the session (security.csrf_token), so a planted cookie and header pair fails.
    if request.method not in SAFE_METHODS:
        csrf = request.cookies.get(CSRF_COOKIE)
        if not csrf or request.headers.get(CSRF_HEADER) != csrf or \
                not csrf_matches(request.app.state.settings.secret_key, token, csrf):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token header")
    return token


BearerToken = Annotated[str, Depends(get_bearer_token)]
INVALID_TOKEN = "token is invalid, expired or revoked"


def get_current_user(token: BearerToken, session: SessionDep) -> User:
    user = auth_service.user_for_token(session, token)
    if user is None:
        raise _unauthorized(INVALID_TOKEN)
    return user


def project_access(session: Session, token: str, project_id: int, need: project_service.Need) \
        -> tuple[User, Project, str]:
    """The caller, the project and their role in one query (the hot routes' version of
    ``CurrentUser`` + ``get_project_for``): 401, 404 or 403 as those would answer."""
    found = project_service.access_by_token(session, token, project_id, need)
    if found is None:
        raise _unauthorized(INVALID_TOKEN)
    return found


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this action needs an admin account")
    return user


AdminUser = Annotated[User, Depends(get_admin_user)]


@dataclass(frozen=True)
class Access:
    """Who asks, the project they asked about, and their role in it ("admin", "annotator", ...)."""

    user: User
    project: Project
    role: str


def require(session: Session, user: User, project_id: int, need: project_service.Need = "view", *,
            not_found: str | None = None) -> Access:
    """The caller's access to a project, or 404 if they may not know it exists, 403 if they may see it
    but not do this (for routes that reach a project through another resource).

    ``not_found``: the 404 text of the resource the route reached the project through ("job 7 not
    found"), so that a resource in a project the caller may not see answers exactly as one that does
    not exist (a "project 2 not found" would say that job 7 exists)."""
    if need == "admin":
        get_admin_user(user)  # a non-admin hears 403 whether or not the project exists, as AdminUser says
    try:
        project, role = project_service.get_project_for(session, user, project_id, need)
    except NotFound:
        if not_found is None:
            raise
        raise NotFound(not_found) from None
    return Access(user, project, role)


def _project_dependency(need: project_service.Need) -> Callable[[int, Session, User], Access]:
    def access(pid: int, session: SessionDep, user: CurrentUser) -> Access:
        return require(session, user, pid, need)

    access.__name__ = f"project_{need}_access"
    return access


ProjectMember = Annotated[Access, Depends(_project_dependency("view"))]
ProjectLabeller = Annotated[Access, Depends(_project_dependency("label"))]
ProjectReviewer = Annotated[Access, Depends(_project_dependency("review"))]
ProjectAdmin = Annotated[Access, Depends(_project_dependency("admin"))]


# A keep-alive connection stays with the API process that accepted it, and 20 annotators' connections,
# opened at once, rarely split evenly between processes: those on the busier one wait longer for
# every call. Like a proxy's "max requests per connection", the busiest routes close a connection
# after this many answers; the client opens a new one, which the least busy process tends to accept
# first (measured: bench/load.py, docs/reliability.md "Load").
# (LOUPE_MAX_REQUESTS_PER_CONNECTION beside LOUPE_API_WORKERS: a deployment knob of the serving
# process, like the worker count; 0 never closes.)
MAX_REQUESTS_PER_CONNECTION = int(os.environ.get("LOUPE_MAX_REQUESTS_PER_CONNECTION", "100"))


class AnswerCounts:
    """Answers given on each client connection (host, port), held by the app (``app.state.answers``):
    each app, and each test's app, counts its own."""

    def __init__(self) -> None:
        self._answered: dict[tuple[str, int], int] = {}

    def closes(self, key: tuple[str, int], limit: int) -> bool:
        """Count one more answer on ``key``; True when it is the one that should close the connection."""
        n = self._answered.pop(key, 0) + 1
        if n >= limit:
            return True
        if len(self._answered) > 10_000:  # connections the clients closed themselves
            self._answered.clear()
        self._answered[key] = n
        return False


def recycle_connection(request: Request, response: Response) -> Response:
    """Count this connection's answers; ask the client to reconnect every MAX_REQUESTS_PER_CONNECTION."""
    if request.client is None or MAX_REQUESTS_PER_CONNECTION <= 0:
        return response
    answers: AnswerCounts = request.app.state.answers
    if answers.closes((request.client.host, request.client.port), MAX_REQUESTS_PER_CONNECTION):
        response.headers["connection"] = "close"
    return response
