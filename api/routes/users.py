"""User, device and token administration (admin only); every change is in the audit log.

Revoking a token ends it at once in this API process (its cache entry is dropped) and in
other replicas within ``BK_AUTH_CACHE_TTL_S``; ``brightkitchen users tokens``,
``users revoke-token`` and ``users revoke-tokens`` do the same from the command line.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from api.auth.schemas import (
    DeviceCreate,
    DeviceTokenPublic,
    RevokedPublic,
    TokenInfoPublic,
    TokensPublic,
    UserCreate,
    UserPublic,
    UsersPublic,
)
from api.auth.scope import Role
from api.auth.users import (
    create_device,
    create_user,
    list_tokens,
    list_users,
    revoke_token_id,
    revoke_user_tokens,
    set_active,
)
from api.deps import AdminUser, AuthCacheDep, AuthSettingsDep, ConnDep
from api.schemas import ErrorPublic
from bkcommon.timeutil import utcnow

router = APIRouter(prefix="/users", tags=["users"])

_BAD: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorPublic, "description": "Invalid user, or unknown region/person/site."}
}
_MISSING: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "No such user."}
}


@router.get("", response_model=UsersPublic)
def read_users(conn: ConnDep, admin: AdminUser) -> UsersPublic:
    """List every user and device with role, scope anchors, site grants and state."""
    rows = [UserPublic.model_validate(r) for r in list_users(conn)]
    return UsersPublic(data=rows, count=len(rows))


@router.post("", response_model=UserPublic, status_code=201, responses=_BAD)
def add_user(conn: ConnDep, admin: AdminUser, body: UserCreate) -> UserPublic:
    """Create a console user; the password is stored as an argon2id hash."""
    if body.role is Role.DEVICE:
        raise HTTPException(status_code=422, detail="create devices with POST /users/devices")
    created = create_user(
        conn,
        username=body.username,
        role=body.role,
        password=body.password,
        region_id=body.region_id,
        person_id=body.person_id,
        insurer=body.insurer,
        site_ids=tuple(body.site_ids),
        actor=admin.username,
    )
    return _one(conn, created.username)


@router.post("/devices", response_model=DeviceTokenPublic, status_code=201, responses=_BAD)
def add_device(
    conn: ConnDep, admin: AdminUser, auth: AuthSettingsDep, body: DeviceCreate
) -> DeviceTokenPublic:
    """Create a device credential for some sites; its token is shown in this answer only.

    The token expires after ``BK_AUTH_DEVICE_TOKEN_TTL_D`` days; the device rotates it.
    """
    issued = create_device(
        conn,
        name=body.name,
        site_ids=tuple(body.site_ids),
        now=utcnow(),
        actor=admin.username,
        ttl=auth.device_token_ttl,
    )
    return DeviceTokenPublic(username=issued.principal.username, token=issued.token)


@router.post("/{username}/disable", response_model=UserPublic, responses=_MISSING)
def disable_user(conn: ConnDep, admin: AdminUser, cache: AuthCacheDep, username: str) -> UserPublic:
    """Disable a user or device and revoke its tokens."""
    if not set_active(conn, username=username, active=False, actor=admin.username, now=utcnow()):
        raise HTTPException(status_code=404, detail=f"user {username!r} not found")
    cache.clear()  # its cached sessions end now, not when they go stale
    return _one(conn, username)


@router.post("/{username}/enable", response_model=UserPublic, responses=_MISSING)
def enable_user(conn: ConnDep, admin: AdminUser, cache: AuthCacheDep, username: str) -> UserPublic:
    """Enable a disabled user again (it signs in anew; old tokens stay revoked)."""
    if not set_active(conn, username=username, active=True, actor=admin.username, now=utcnow()):
        raise HTTPException(status_code=404, detail=f"user {username!r} not found")
    cache.clear()  # its cached sessions end now, not when they go stale
    return _one(conn, username)


@router.get("/tokens", response_model=TokensPublic)
def read_tokens(conn: ConnDep, admin: AdminUser, username: str | None = None) -> TokensPublic:
    """List tokens (of one user with ``username``): kind, expiry, last use, revocation.

    Neither the token nor its hash is ever shown.
    """
    rows = [TokenInfoPublic.model_validate(r) for r in list_tokens(conn, username=username)]
    return TokensPublic(data=rows, count=len(rows))


_NO_TOKEN: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "No such token."}
}


@router.post("/tokens/{token_id}/revoke", response_model=RevokedPublic, responses=_NO_TOKEN)
def revoke_one_token(
    conn: ConnDep, admin: AdminUser, cache: AuthCacheDep, token_id: int
) -> RevokedPublic:
    """Revoke one token now (a lost phone, a stolen edge box); audited as ``auth.revoke``."""
    done = revoke_token_id(conn, token_id=token_id, now=utcnow(), actor=admin.username)
    if done is None:
        raise HTTPException(status_code=404, detail=f"token {token_id} not found")
    cache.clear()  # the cache is keyed by token hash, which the id does not give
    return RevokedPublic(revoked=int(done))


@router.post("/{username}/tokens/revoke", response_model=RevokedPublic, responses=_MISSING)
def revoke_all_tokens(
    conn: ConnDep, admin: AdminUser, cache: AuthCacheDep, username: str
) -> RevokedPublic:
    """Revoke every live token of a user or device; the account itself stays enabled."""
    count = revoke_user_tokens(conn, username=username, now=utcnow(), actor=admin.username)
    if count is None:
        raise HTTPException(status_code=404, detail=f"user {username!r} not found")
    cache.clear()
    return RevokedPublic(revoked=count)


def _one(conn: ConnDep, username: str) -> UserPublic:
    row = next(r for r in list_users(conn) if r["username"] == username)
    return UserPublic.model_validate(row)
