"""FastAPI dependencies: settings, a database connection, the signed-in user and their scope.

Routes use ``CurrentUser`` (401 without a valid token or session cookie), ``ScopeDep``
(the sites the user may see, resolved once per request; pass it to every query),
``WriterUser`` (403 for read-only roles: insurer, device) and ``require_role(...)``.
Document the answers with ``responses={**AUTH_RESPONSES, **not_found("x")}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from api.auth.resolve import resolve_scope
from api.auth.scope import Principal, Role, SiteScope
from api.auth.settings import AuthSettings
from api.auth.users import principal_for_token
from api.schemas import ErrorPublic
from api.settings import ApiSettings
from bkcommon.timeutil import utcnow

Conn = psycopg.Connection[Any]

SESSION_COOKIE = "bk_session"

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A session token from POST /api/v1/auth/login, or a device token.",
)
cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The console's HttpOnly session cookie, set by POST /api/v1/auth/login.",
)


def get_settings(request: Request) -> ApiSettings:
    """The settings the app was created with (tests pass their own to ``create_app``)."""
    settings: ApiSettings = request.app.state.settings
    return settings


def get_auth_settings(request: Request) -> AuthSettings:
    """Sign-in and session settings the app was created with."""
    settings: AuthSettings = request.app.state.auth_settings
    return settings


def get_conn(request: Request) -> Iterator[Conn]:
    """An autocommit connection from the app's pool, returned after the request."""
    with request.app.state.pool.connection() as conn:
        yield conn


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
AuthSettingsDep = Annotated[AuthSettings, Depends(get_auth_settings)]
ConnDep = Annotated[Conn, Depends(get_conn)]


def unauthorized(detail: str = "not signed in") -> HTTPException:
    """A 401 with the ``WWW-Authenticate: Bearer`` challenge."""
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def request_token(bearer: HTTPAuthorizationCredentials | None, cookie: str | None) -> str | None:
    """The raw token of a request: the bearer header wins over the session cookie."""
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return cookie or None


def get_current_user(
    conn: ConnDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    cookie: Annotated[str | None, Security(cookie_scheme)],
) -> Principal:
    """The principal of a valid, unexpired, unrevoked token of an active user, else 401."""
    token = request_token(bearer, cookie)
    if token is None:
        raise unauthorized()
    principal = principal_for_token(conn, token=token, now=utcnow())
    if principal is None:
        raise unauthorized("invalid or expired token")
    return principal


CurrentUser = Annotated[Principal, Depends(get_current_user)]


def get_scope(conn: ConnDep, user: CurrentUser) -> SiteScope:
    """The sites ``user`` may see (FastAPI caches it for the rest of the request)."""
    return resolve_scope(conn, user)


ScopeDep = Annotated[SiteScope, Depends(get_scope)]


def require_role(*roles: Role) -> Callable[..., Principal]:
    """Dependency factory: the current user if their role is one of ``roles``, else 403.

    Example: ``user: Annotated[Principal, Depends(require_role(Role.ADMIN))]``.
    """
    allowed = frozenset(roles)

    def _check(user: CurrentUser) -> Principal:
        if user.role not in allowed:
            raise HTTPException(status_code=403, detail=f"role {user.role.value} may not do this")
        return user

    return _check


WRITER_ROLES = (Role.ADMIN, Role.REGULATOR, Role.OFFICER, Role.DIRECTOR)

WriterUser = Annotated[Principal, Depends(require_role(*WRITER_ROLES))]
AdminUser = Annotated[Principal, Depends(require_role(Role.ADMIN))]


def not_found(what: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI description of a 404 answer for ``what``."""
    return {
        404: {
            "model": ErrorPublic,
            "description": f"No such {what}, or it is outside your sites.",
        }
    }


AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorPublic, "description": "Not signed in, or the token is invalid."},
    403: {"model": ErrorPublic, "description": "Your role may not do this."},
}
