"""HTTP models of sign-in, the current user and user administration."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.auth.scope import Role


class LoginIn(BaseModel):
    """Username and password of a console user."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class MePublic(BaseModel):
    """The signed-in user, with the sites they may see."""

    id: int
    username: str
    role: Role
    region_id: str | None
    person_id: str | None
    insurer: str | None
    read_only: bool = Field(description="Insurers and devices only read.")
    all_sites: bool = Field(description="Every site is in scope (admin).")
    site_ids: list[str] = Field(description="Sites in scope when not all_sites.")


class TokenPublic(BaseModel):
    """A session token, shown once; the console uses the cookie set with it instead."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_at: datetime | None
    user: MePublic


class UserCreate(BaseModel):
    """A new console user (devices are created with ``POST /users/devices``)."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.@\-]+$")
    password: str = Field(min_length=8, max_length=1000)
    role: Role
    region_id: str | None = Field(default=None, description="Regulator: region (and below).")
    person_id: str | None = Field(default=None, description="Officer/director: their person.")
    insurer: str | None = Field(default=None, max_length=200, description="Insurer: company.")
    site_ids: list[str] = Field(default_factory=list, max_length=1000, description="Grants.")


class DeviceCreate(BaseModel):
    """A new device credential (edge box, ingest worker) for some sites."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    site_ids: list[str] = Field(min_length=1, max_length=1000)


class UserPublic(BaseModel):
    """A user as the admin sees it (never its password hash)."""

    id: int
    username: str
    role: Role
    region_id: str | None
    person_id: str | None
    insurer: str | None
    active: bool
    created_at: datetime
    locked_until: datetime | None
    site_ids: list[str] = Field(description="Canteens granted to the user itself.")
    person_site_ids: list[str] = Field(
        default_factory=list, description="Canteens its person is named officer/director of."
    )


class UserUpdate(BaseModel):
    """A change of role, anchors or site grants; what is left out stays as it was.

    ``site_ids`` replaces the grants. A regulator may only set what stays in its region.
    """

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    region_id: str | None = Field(default=None, description="Regulator: region (and below).")
    person_id: str | None = Field(default=None, description="Officer/director: their person.")
    insurer: str | None = Field(default=None, max_length=200, description="Insurer: company.")
    site_ids: list[str] | None = Field(default=None, max_length=1000, description="Grants.")


class PasswordReset(BaseModel):
    """A new password for a user; every session of the user ends."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=8, max_length=1000)


class PasswordResetPublic(BaseModel):
    """A password was set; how many sessions it ended."""

    username: str
    revoked: int


class GrantRegionPublic(BaseModel):
    """A region the caller may name."""

    id: str
    name: str


class GrantSitePublic(BaseModel):
    """A canteen the caller may grant."""

    id: str
    name: str
    region_id: str


class GrantOptionsPublic(BaseModel):
    """What the caller may grant: roles, regions and canteens (a regulator: its region's)."""

    roles: list[Role]
    regions: list[GrantRegionPublic]
    sites: list[GrantSitePublic]


class UsersPublic(BaseModel):
    """Every user, by username."""

    data: list[UserPublic]
    count: int


class DeviceTokenPublic(BaseModel):
    """A device's token, shown once."""

    username: str
    token: str


class TokenInfoPublic(BaseModel):
    """A token as the admin sees it: owner, kind and state, never the token or its hash."""

    id: int
    username: str
    role: Role
    kind: str = Field(description="session (sign-in) or device.")
    name: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokensPublic(BaseModel):
    """Tokens, newest first (at most 1000)."""

    data: list[TokenInfoPublic]
    count: int


class RevokedPublic(BaseModel):
    """How many tokens a revocation ended."""

    revoked: int
