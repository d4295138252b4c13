"""HTTP models of the rectification closed loop: ticket actions, evidence, capture reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas import Public


class ActionIn(BaseModel):
    """Body of a ticket action: the note (required for reject, reopen and close)."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=4000, description="Why, or what was done.")


class TicketCreate(BaseModel):
    """A ticket opened by hand (e.g. seen on an inspection round)."""

    model_config = ConfigDict(extra="forbid")

    site_id: str = Field(min_length=1, max_length=64)
    rule: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    subject: str = Field(
        min_length=1, max_length=200, description="What or where, e.g. 后门垃圾桶."
    )
    tier: int = Field(ge=1, le=3, strict=True)  # JSON true is not tier 1
    note: str = Field(default="", max_length=4000)


class TicketCreatedPublic(BaseModel):
    """The ticket a manual entry opened, or joined as an occurrence."""

    ticket_id: int
    opened: bool = Field(description="False: an open ticket of the same rule and subject existed.")


class ActionResultPublic(BaseModel):
    """Where an action left the ticket, and what the caller may do next."""

    ticket_id: int
    previous: str
    status: str
    event_id: int = Field(description="The timeline entry this action wrote.")
    allowed_actions: list[str]


class EvidencePublic(Public):
    """A file attached to a ticket (served at ``/api/v1/evidence/{sha256}``)."""

    sha256: str
    kind: str
    media_type: str
    size_bytes: int
    filename: str = Field(description="Sanitised display name; never a path.")
    uploaded_by: str
    at: datetime
    event_id: int | None = Field(description="The rectification it was submitted with, if any.")
    url: str


class ReviewPublic(Public):
    """A capture in the review queue, or reviewed."""

    id: int
    finding_id: int
    event_id: str
    site_id: str
    camera_id: str
    rule: str
    model_version: str
    evidence_sha256: str | None
    status: Literal["pending", "confirmed", "dismissed"]
    reason: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    ticket_id: int | None
    created_at: datetime


class ReviewsPublic(BaseModel):
    """A page of reviews, oldest first."""

    data: list[ReviewPublic]
    count: int


class DismissIn(BaseModel):
    """Why a capture is a false positive."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class FalseAlarmRatePublic(BaseModel):
    """Reviewed captures of one group and the share dismissed as false."""

    key: str
    confirmed: int
    dismissed: int
    pending: int
    false_alarm_rate: float | None = Field(description="dismissed / reviewed; None if none.")


class ReviewStatsPublic(BaseModel):
    """False-alarm rates per rule, camera and model version."""

    by_rule: list[FalseAlarmRatePublic]
    by_camera: list[FalseAlarmRatePublic]
    by_model_version: list[FalseAlarmRatePublic]
