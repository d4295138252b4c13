"""Alert channels: who is told about your sites' tickets, and a test send through a channel.

``GET /alerts/channels`` lists the people named at your sites with their channels, masked
(webhook URLs and robot keys are credentials). ``POST .../test`` sends a marked test message
through the real sender at once and says whether it arrived, or the channel's error; every
test is written to the audit log. Admins, regulators (their region) and a site's officer or
director (their sites) may; insurers and devices get 403.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from api.auth.users import audit
from api.deps import ConnDep, ScopeDep, SettingsDep, WriterUser, not_found
from api.services.alert_channels import find_channel, list_channels, mask_address, send_test
from bkcommon.timeutil import utcnow

router = APIRouter(prefix="/alerts", tags=["alerts"])


class PersonSitePublic(BaseModel):
    """A site the person is named at, and as what."""

    site_id: str
    role: str


class AlertChannelPublic(BaseModel):
    """One channel of one person; the address is masked."""

    person_id: str
    person_name: str
    index: int = Field(description="Place in the person's channel list (0-based).")
    kind: str = Field(description="webhook, email, wecom, dingtalk or sms.")
    address_masked: str
    sites: list[PersonSitePublic]


class AlertChannelsPublic(BaseModel):
    """The channels of the people of your sites, people by id."""

    data: list[AlertChannelPublic]


class ChannelTestPublic(BaseModel):
    """How the test send went: delivered, or the channel's error in words."""

    person_id: str
    index: int
    kind: str
    address_masked: str
    delivered: bool
    detail: str = Field(description="'delivered', or why the channel did not take it.")
    duration_ms: float


@router.get("/channels", response_model=AlertChannelsPublic)
def read_channels(conn: ConnDep, scope: ScopeDep, user: WriterUser) -> AlertChannelsPublic:
    """The people named at your sites and their alert channels (addresses masked)."""
    return AlertChannelsPublic(
        data=[
            AlertChannelPublic(
                person_id=r.person_id,
                person_name=r.person_name,
                index=r.index,
                kind=r.kind,
                address_masked=mask_address(r.kind, r.address),
                sites=[PersonSitePublic(site_id=s, role=role) for s, role in r.sites],
            )
            for r in list_channels(conn, scope=scope)
        ]
    )


_TEST_ANSWERS: dict[int | str, dict[str, Any]] = {**not_found("person or channel")}


@router.post(
    "/channels/{person_id}/{index}/test", response_model=ChannelTestPublic, responses=_TEST_ANSWERS
)
def send_channel_test(
    *,
    conn: ConnDep,
    scope: ScopeDep,
    user: WriterUser,
    settings: SettingsDep,
    person_id: Annotated[str, Path(max_length=100)],
    index: Annotated[int, Path(ge=0, le=1000)],
) -> ChannelTestPublic:
    """Send a marked test message through one channel now; answers whether it arrived.

    Runs in the thread pool: the send waits on the channel (up to its timeout).
    """
    found = find_channel(conn, person_id=person_id, index=index, scope=scope)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no channel {index} of {person_id!r}")
    row, secret = found
    now = utcnow()
    outcome = send_test(row, secret, sent_by=user.username, now=now, settings=settings)
    masked = mask_address(row.kind, row.address)
    audit(conn, actor=user.username, action="alerts.test", target=f"{person_id}/{index}",
          data={"kind": row.kind, "address": masked, "delivered": outcome.delivered,
                "detail": outcome.detail})  # fmt: skip
    return ChannelTestPublic(
        person_id=person_id,
        index=index,
        kind=row.kind,
        address_masked=masked,
        delivered=outcome.delivered,
        detail=outcome.detail,
        duration_ms=round(outcome.duration_ms, 1),
    )
