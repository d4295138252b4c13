"""User, device and token administration; every change is in the audit log.

Admins manage every user and device. A regulator manages the users of its region (officers
and directors whose canteens all lie in it, regulators of it and the regions below) and
grants only roles within it (``api.auth.user_admin``): a user outside its region is 404, a
grant beyond it 403 with an ``X-BK-Reason`` code the console words in the reader's language.
Devices and tokens by id stay with admins.

Revoking a token ends it at once in this API process (its cache entry is dropped) and in
other replicas within ``BK_AUTH_CACHE_TTL_S``; ``brightkitchen users tokens``,
``users revoke-token`` and ``users revoke-tokens`` do the same from the command line.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from api.auth.schemas import (
    DeviceCreate,
    DeviceTokenPublic,
    GrantOptionsPublic,
    PasswordReset,
    PasswordResetPublic,
    RevokedPublic,
    TokenInfoPublic,
    TokensPublic,
    UserCreate,
    UserPublic,
    UsersPublic,
    UserUpdate,
)
from api.auth.scope import Principal, Role
from api.auth.user_admin import (
    Grant,
    UserRefusedError,
    check_grant,
    grant_options,
    keep_an_admin,
    manageable,
    reset_password,
    update_user,
    visible_users,
)
from api.auth.users import (
    UserError,
    create_device,
    create_user,
    list_tokens,
    list_users,
    revoke_token_id,
    revoke_user_tokens,
    set_active,
)
from api.deps import AdminUser, AuthCacheDep, AuthSettingsDep, Conn, ConnDep, require_role
from api.schemas import ErrorPublic
from bkcommon.timeutil import utcnow

router = APIRouter(prefix="/users", tags=["users"])

_BAD: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorPublic, "description": "Invalid user, or unknown region/person/site."}
}
_MISSING: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorPublic, "description": "No such user, or not in your region."}
}
_GRANT: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorPublic,
        "description": "Your role may not do this, or the grant reaches beyond your region "
        "(the X-BK-Reason header names why).",
    }
}

ManagerUser = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.REGULATOR))]


def _refused(exc: UserRefusedError) -> HTTPException:
    return HTTPException(status_code=403, detail=str(exc), headers={"X-BK-Reason": exc.reason})


def _target(conn: Conn, actor: Principal, username: str) -> dict[str, Any]:
    """The ``list_users`` row of a user ``actor`` manages, else 404 (no hint it exists)."""
    row = next((r for r in list_users(conn) if r["username"] == username), None)
    if row is None or not manageable(conn, actor, row):
        raise HTTPException(status_code=404, detail=f"user {username!r} not found")
    return row


def _not_self(actor: Principal, username: str) -> None:
    if actor.role is not Role.ADMIN and actor.username == username:
        raise _refused(
            UserRefusedError("users_self", "you may not change or disable your own account")
        )


@router.get("", response_model=UsersPublic)
def read_users(conn: ConnDep, user: ManagerUser) -> UsersPublic:
    """List users with role, scope anchors, site grants and state.

    An admin sees every user and device; a regulator the users of its region.
    """
    rows = [UserPublic.model_validate(r) for r in visible_users(conn, user, list_users(conn))]
    return UsersPublic(data=rows, count=len(rows))


@router.get("/options", response_model=GrantOptionsPublic)
def read_grant_options(conn: ConnDep, user: ManagerUser) -> GrantOptionsPublic:
    """The roles, regions and canteens you may grant (a regulator: those of its region)."""
    return GrantOptionsPublic.model_validate(grant_options(conn, user))


@router.post("", response_model=UserPublic, status_code=201, responses={**_BAD, **_GRANT})
def add_user(conn: ConnDep, admin: ManagerUser, body: UserCreate) -> UserPublic:
    """Create a console user; the password is stored as an argon2id hash.

    A regulator creates officers and directors of its region's canteens and regulators
    of its region or one below; any other role or place is refused (403).
    """
    if body.role is Role.DEVICE:
        raise HTTPException(status_code=422, detail="create devices with POST /users/devices")
    grant = Grant(body.role, body.region_id, body.person_id, body.insurer, tuple(body.site_ids))
    try:
        check_grant(conn, admin, grant)
    except UserRefusedError as exc:
        raise _refused(exc) from exc
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


@router.patch("/{username}", response_model=UserPublic, responses={**_MISSING, **_BAD, **_GRANT})
def change_user(
    conn: ConnDep, admin: ManagerUser, cache: AuthCacheDep, username: str, body: UserUpdate
) -> UserPublic:
    """Change a user's role, region, person or canteen grants (``site_ids`` replaces them).

    The user must be yours to manage, and so must it be after the change.
    """
    row = _target(conn, admin, username)
    _not_self(admin, username)
    sent = body.model_dump(exclude_unset=True)
    grant = Grant(
        role=body.role or Role(row["role"]),
        region_id=sent.get("region_id", row["region_id"]),
        person_id=sent.get("person_id", row["person_id"]),
        insurer=sent.get("insurer", row["insurer"]),
        site_ids=tuple(body.site_ids if body.site_ids is not None else row["site_ids"]),
    )
    if Role(row["role"]) is Role.DEVICE:
        raise HTTPException(status_code=422, detail="devices are changed by their site grants")
    try:
        check_grant(conn, admin, grant)
        keep_an_admin(conn, row, still_admin=grant.role is Role.ADMIN)
    except UserRefusedError as exc:
        raise _refused(exc) from exc
    update_user(conn, username=username, grant=grant, actor=admin.username)
    cache.clear()  # its sessions take the new role and scope now
    return _one(conn, username)


@router.post(
    "/{username}/password", response_model=PasswordResetPublic, responses={**_MISSING, **_BAD}
)
def set_password(
    conn: ConnDep, admin: ManagerUser, cache: AuthCacheDep, username: str, body: PasswordReset
) -> PasswordResetPublic:
    """Reset a user's password: a lockout is lifted and every session of the user ends."""
    _target(conn, admin, username)
    try:
        ended = reset_password(
            conn, username=username, password=body.password, actor=admin.username, now=utcnow()
        )
    except UserError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    cache.clear()
    return PasswordResetPublic(username=username, revoked=ended)


@router.post("/{username}/disable", response_model=UserPublic, responses={**_MISSING, **_GRANT})
def disable_user(
    conn: ConnDep, admin: ManagerUser, cache: AuthCacheDep, username: str
) -> UserPublic:
    """Disable a user or device and revoke its tokens (a regulator: its region's users)."""
    row = _target(conn, admin, username)
    _not_self(admin, username)
    try:
        keep_an_admin(conn, row, still_admin=False)
    except UserRefusedError as exc:
        raise _refused(exc) from exc
    if not set_active(conn, username=username, active=False, actor=admin.username, now=utcnow()):
        raise HTTPException(status_code=404, detail=f"user {username!r} not found")
    cache.clear()  # its cached sessions end now, not when they go stale
    return _one(conn, username)


@router.post("/{username}/enable", response_model=UserPublic, responses=_MISSING)
def enable_user(
    conn: ConnDep, admin: ManagerUser, cache: AuthCacheDep, username: str
) -> UserPublic:
    """Enable a disabled user again (it signs in anew; old tokens stay revoked)."""
    _target(conn, admin, username)
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
    conn: ConnDep, admin: ManagerUser, cache: AuthCacheDep, username: str
) -> RevokedPublic:
    """Revoke every live token of a user or device; the account itself stays enabled."""
    _target(conn, admin, username)
    count = revoke_user_tokens(conn, username=username, now=utcnow(), actor=admin.username)
    if count is None:
        raise HTTPException(status_code=404, detail=f"user {username!r} not found")
    cache.clear()
    return RevokedPublic(revoked=count)


def _one(conn: ConnDep, username: str) -> UserPublic:
    row = next(r for r in list_users(conn) if r["username"] == username)
    return UserPublic.model_validate(row)
