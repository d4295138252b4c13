"""FastAPI dependencies: settings, a database connection, the signed-in user and their scope.

Routes use ``CurrentUser`` (401 without a valid token or session cookie), ``ScopeDep``
(the sites the user may see; pass it to every query),
``WriterUser`` (403 for read-only roles: insurer, device) and ``require_role(...)``.
Document the answers with ``responses={**AUTH_RESPONSES, **not_found("x")}``.

The hot path stays on the event loop: a pooled connection is taken without a thread hop
when one is free, and the token's user and scope come from a short-lived cache
(``api.auth.cache``); only a cache miss or an empty pool goes to the thread pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

import psycopg
from fastapi import Depends, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from api.auth.cache import AuthCache, CachedAuth
from api.auth.device import device_allowed, device_refused
from api.auth.passwords import token_hash
from api.auth.resolve import resolve_scope
from api.auth.scope import Principal, Role, SiteScope
from api.auth.settings import AuthSettings
from api.auth.users import token_principal
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


async def get_settings(request: Request) -> ApiSettings:
    """The settings the app was created with (tests pass their own to ``create_app``)."""
    settings: ApiSettings = request.app.state.settings
    return settings


async def get_auth_settings(request: Request) -> AuthSettings:
    """Sign-in and session settings the app was created with."""
    settings: AuthSettings = request.app.state.auth_settings
    return settings


_FREE_CONN_WAIT_S = 0.0005  # on the event loop: take a free connection, never wait there


async def get_conn(request: Request) -> AsyncIterator[Conn]:
    """An autocommit connection from the app's pool, returned after the request.

    A free connection is taken on the event loop; when none is free the wait (up to
    ``BK_API_DB_TIMEOUT_S``, then 503) happens in the thread pool.
    """
    pool: ConnectionPool[Conn] = request.app.state.pool
    try:
        conn = pool.getconn(timeout=_FREE_CONN_WAIT_S)
    except PoolTimeout:
        conn = await run_in_threadpool(pool.getconn)
    try:
        yield conn
    finally:
        if conn.info.transaction_status is TransactionStatus.IDLE:
            pool.putconn(conn)  # no I/O for an idle autocommit connection
        else:
            await run_in_threadpool(pool.putconn, conn)  # rollback or close: I/O


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


async def get_auth_cache(request: Request) -> AuthCache:
    """The app's cache of resolved tokens (sign-out and user changes drop entries)."""
    cache: AuthCache = request.app.state.auth_cache
    return cache


AuthCacheDep = Annotated[AuthCache, Depends(get_auth_cache)]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cross_origin(request: Request) -> bool:
    """True when the browser says the request comes from another origin.

    Fetch Metadata (``Sec-Fetch-Site``) when sent, else ``Origin`` against ``Host``; a
    request with neither (curl, scripts, the tests) is not a browser's cross-origin one.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    # a reverse proxy may rewrite Host and keep the browser's in X-Forwarded-Host (a page
    # on another origin cannot set either header on a form or a simple request)
    ours = {
        request.headers.get(name, "").split(",")[0].strip().lower()
        for name in ("host", "x-forwarded-host")
    }
    return urlsplit(origin).netloc.lower() not in ours - {""}


def _look_up(conn: Conn, token: str, now: datetime) -> CachedAuth | None:
    found = token_principal(conn, token=token, now=now)
    if found is None:
        return None
    principal, expires_at = found
    return CachedAuth(principal, resolve_scope(conn, principal), expires_at)


async def get_auth(
    request: Request,
    conn: ConnDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    cookie: Annotated[str | None, Security(cookie_scheme)],
) -> CachedAuth:
    """The user and scope of a valid, unexpired, unrevoked token of an active user, else 401.

    A device token gets 403 here on every route not marked ``DEVICE_ALLOWED``.

    Served from the auth cache when fresh; looked up (two queries) in the thread pool
    otherwise. The request's own connection is used, so a lookup never waits for a second.
    """
    token = request_token(bearer, cookie)
    if token is None:
        raise unauthorized()
    from_cookie = bearer is None or not bearer.credentials
    if from_cookie and request.method not in _SAFE_METHODS and cross_origin(request):
        # the cookie rides along with any request the browser makes; a write with it must
        # come from the console's own pages (CSRF), whatever SameSite a browser honours
        raise HTTPException(status_code=403, detail="cross-origin request with the session cookie")
    cache: AuthCache = request.app.state.auth_cache
    key = token_hash(token)
    now = utcnow()
    entry = cache.get(key, now=now)
    if entry is None:
        entry = await run_in_threadpool(_look_up, conn, token, now)
        if entry is None:
            raise unauthorized("invalid or expired token")
        cache.put(key, entry)
    if entry.principal.role is Role.DEVICE and not device_allowed(request):
        raise device_refused(request, entry.principal.username)  # deny by default
    return entry


AuthDep = Annotated[CachedAuth, Depends(get_auth)]


async def get_current_user(auth: AuthDep) -> Principal:
    """The principal of the request's token (401 without a valid one)."""
    return auth.principal


CurrentUser = Annotated[Principal, Depends(get_current_user)]


async def get_scope(auth: AuthDep) -> SiteScope:
    """The sites the request's user may see, resolved with the token."""
    return auth.scope


ScopeDep = Annotated[SiteScope, Depends(get_scope)]


def require_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: the current user if their role is one of ``roles``, else 403.

    Example: ``user: Annotated[Principal, Depends(require_role(Role.ADMIN))]``.
    """
    allowed = frozenset(roles)

    async def _check(user: CurrentUser) -> Principal:
        if user.role not in allowed:
            raise HTTPException(status_code=403, detail=f"role {user.role.value} may not do this")
        return user

    return _check


WRITER_ROLES = (Role.ADMIN, Role.REGULATOR, Role.OFFICER, Role.DIRECTOR)

WriterUser = Annotated[Principal, Depends(require_role(*WRITER_ROLES))]
# The inspection workflow: plan, record and sign inspections. An inspector (执法检查人员)
# writes nothing else but a ticket's check (verify, reject, reopen: the lifecycle decides),
# its comments and the triage queue's confirm / dismiss.
INSPECTION_ROLES = (Role.ADMIN, Role.REGULATOR, Role.INSPECTOR)
InspectionUser = Annotated[Principal, Depends(require_role(*INSPECTION_ROLES))]
TicketUser = Annotated[Principal, Depends(require_role(*WRITER_ROLES, Role.INSPECTOR))]
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
