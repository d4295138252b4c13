"""Edge-box enrolment: admins create one-time codes; a new box trades its code once.

``POST /enrol`` needs no sign-in: the code is the credential (bound to one box, expiring,
spent by its first use). Every refusal of a code gets the same 403, so an answer never
tells whether a code exists.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import AUTH_RESPONSES, AdminUser, AuthCacheDep, AuthSettingsDep, ConnDep
from api.services.enrol import create_code, redeem
from bkcommon.timeutil import utcnow

router = APIRouter(prefix="/enrol", tags=["edge enrolment"])

_BOX_ID = Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$", description="Edge box id of the registry.")


class EnrolCodeCreate(BaseModel):
    """Ask for a code for one box of the registry."""

    model_config = ConfigDict(extra="forbid")
    box_id: str = _BOX_ID
    ttl_h: float = Field(default=72.0, ge=5 / 60, le=24 * 30, description="Code lifetime (h).")


class EnrolCodePublic(BaseModel):
    """A new code, shown in this answer only."""

    code: str = Field(description="Give it to the installer; spent by its first use.")
    box_id: str
    site_id: str
    expires_at: datetime


class EnrolRequest(BaseModel):
    """What the install script sends."""

    model_config = ConfigDict(extra="forbid")
    box_id: str = _BOX_ID
    code: str = Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9\- ]+$")


class EnrolmentPublic(BaseModel):
    """The box's credentials, shown once: the box stores them readable by its service only."""

    box_id: str
    site_id: str
    api_token: str = Field(description="Bearer token of the box (role device).")
    api_token_expires_at: datetime | None
    mqtt_username: str = Field(description="Broker account of the box (edge.<box id>).")
    mqtt_password: str


@router.post(
    "/codes",
    response_model=EnrolCodePublic,
    status_code=201,
    responses={**AUTH_RESPONSES, 422: {"description": "Unknown box or lifetime out of range."}},
)
def add_code(conn: ConnDep, admin: AdminUser, body: EnrolCodeCreate) -> EnrolCodePublic:
    """Create a one-time enrolment code for an edge box of the registry (admins only)."""
    issued = create_code(
        conn, box_id=body.box_id, now=utcnow(), actor=admin.username,
        ttl=timedelta(hours=body.ttl_h),
    )  # fmt: skip
    return EnrolCodePublic(
        code=issued.code, box_id=issued.box_id, site_id=issued.site_id,
        expires_at=issued.expires_at,
    )  # fmt: skip


@router.post(
    "",
    response_model=EnrolmentPublic,
    responses={403: {"description": "Code unknown, already used, expired or for another box."}},
)
def enrol(
    conn: ConnDep,
    auth: AuthSettingsDep,
    cache: AuthCacheDep,
    request: Request,
    body: EnrolRequest,
) -> EnrolmentPublic:
    """Trade a one-time code for the box's API token and broker account (no sign-in)."""
    done = redeem(
        conn, code=body.code, box_id=body.box_id, now=utcnow(),
        client=request.client.host if request.client else "", token_ttl=auth.device_token_ttl,
    )  # fmt: skip
    cache.clear()  # a re-enrolled box's old tokens were revoked: they end here now
    return EnrolmentPublic(
        box_id=done.box_id, site_id=done.site_id, api_token=done.api_token,
        api_token_expires_at=done.api_token_expires_at, mqtt_username=done.mqtt_username,
        mqtt_password=done.mqtt_password,
    )  # fmt: skip
