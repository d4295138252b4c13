"""Sign-in, sign-out and the current user."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials

from api.auth.device import DEVICE_ALLOWED
from api.auth.passwords import token_hash
from api.auth.resolve import resolve_scope
from api.auth.schemas import LoginIn, MePublic, TokenPublic
from api.auth.scope import Principal, Role, SiteScope
from api.auth.users import (
    AuthError,
    ClientLimit,
    RateLimitedError,
    login,
    revoke_token,
    rotate_device_token,
)
from api.deps import (
    AUTH_RESPONSES,
    SESSION_COOKIE,
    AuthCacheDep,
    AuthSettingsDep,
    ConnDep,
    CurrentUser,
    ScopeDep,
    bearer_scheme,
    cookie_scheme,
    request_token,
    unauthorized,
)
from api.schemas import ErrorPublic
from bkcommon.timeutil import utcnow

router = APIRouter(prefix="/auth", tags=["auth"])


def me_public(user: Principal, scope: SiteScope) -> MePublic:
    """The current user and their scope as the API shows it."""
    return MePublic(
        id=int(user.user_id),
        username=user.username,
        role=user.role,
        region_id=user.region_id,
        person_id=user.person_id,
        insurer=user.insurer,
        read_only=user.role.value in ("insurer", "device"),
        all_sites=scope.all_sites,
        site_ids=list(scope.site_ids),
    )


@router.post(
    "/login",
    response_model=TokenPublic,
    responses={
        401: {
            "model": ErrorPublic,
            "description": "Wrong username or password, disabled or locked account.",
        },
        429: {
            "model": ErrorPublic,
            "description": "Too many failed sign-ins from this address; see Retry-After.",
        },
    },
)
def sign_in(
    conn: ConnDep, settings: AuthSettingsDep, body: LoginIn, request: Request, response: Response
) -> TokenPublic:
    """Check a password and return a bearer token; also set the console's session cookie.

    The cookie is HttpOnly and SameSite=Strict. After too many failures in a row the
    account is locked for a while, and an address with too many failures (any usernames)
    gets 429 for a while; every attempt is written to the audit log. The answer to a
    failure never says which part was wrong.
    """
    try:
        issued = login(
            conn,
            username=body.username,
            password=body.password,
            now=utcnow(),
            ttl=settings.session_ttl,
            max_failures=settings.max_failures,
            lock=settings.lock,
            client=request.client.host if request.client else "",
            client_limit=ClientLimit(settings.client_max_failures, settings.client_window),
        )
    except RateLimitedError as exc:
        raise HTTPException(
            status_code=429,
            detail="too many failed sign-ins from this address; try again later",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from exc
    except AuthError as exc:
        raise unauthorized("invalid username or password") from exc
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=int(settings.session_ttl.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure or request.url.scheme == "https",
        path="/",
    )
    return TokenPublic(
        access_token=issued.token,
        expires_at=issued.expires_at,
        user=me_public(issued.principal, resolve_scope(conn, issued.principal)),
    )


@router.post("/logout", status_code=204, responses=AUTH_RESPONSES, openapi_extra=DEVICE_ALLOWED)
def sign_out(
    conn: ConnDep,
    cache: AuthCacheDep,
    user: CurrentUser,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    cookie: Annotated[str | None, Security(cookie_scheme)],
) -> Response:
    """Revoke the token this request used and clear the session cookie."""
    token = request_token(bearer, cookie)
    if token is not None:
        revoke_token(conn, token=token, now=utcnow(), actor=user.username)
        cache.forget(token_hash(token))
    out = Response(status_code=204)
    out.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return out


@router.get("/me", response_model=MePublic, responses=AUTH_RESPONSES, openapi_extra=DEVICE_ALLOWED)
def read_me(user: CurrentUser, scope: ScopeDep) -> MePublic:
    """Who you are signed in as, your role and the sites you may see."""
    return me_public(user, scope)


@router.post(
    "/rotate", response_model=TokenPublic, responses=AUTH_RESPONSES, openapi_extra=DEVICE_ALLOWED
)
def rotate(
    conn: ConnDep,
    settings: AuthSettingsDep,
    user: CurrentUser,
    scope: ScopeDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> TokenPublic:
    """A device swaps its token for a fresh one (devices only; 403 for other roles).

    The new token lives ``BK_AUTH_DEVICE_TOKEN_TTL_D`` days; the old one keeps working
    for ``BK_AUTH_ROTATE_GRACE_S`` seconds, then expires. Rotation is audited.
    """
    if user.role is not Role.DEVICE or bearer is None:
        raise HTTPException(status_code=403, detail="only a device rotates its token here")
    issued = rotate_device_token(
        conn,
        token=bearer.credentials,
        principal=user,
        now=utcnow(),
        ttl=settings.device_token_ttl,
        grace=settings.rotate_grace,
    )
    return TokenPublic(
        access_token=issued.token, expires_at=issued.expires_at, user=me_public(user, scope)
    )
