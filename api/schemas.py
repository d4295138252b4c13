"""HTTP response and request models (``XPublic`` is what the API returns about X)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Public(BaseModel):
    """Base of response models: built from database rows."""

    model_config = ConfigDict(from_attributes=True)


class FieldErrorPublic(BaseModel):
    """One refused input of a request: where it is, why, and pydantic's error type."""

    loc: list[str | int] = Field(description='Where: e.g. ["body", "site_ids", 0].')
    msg: str
    type: str


class ErrorPublic(BaseModel):
    """Body of every error response: ``detail`` is always one string a person can read."""

    detail: str = Field(description="What went wrong, in one sentence.")
    errors: list[FieldErrorPublic] | None = Field(
        default=None, description="On a refused request (422): each field and why."
    )


class AlarmStatus(StrEnum):
    """Life of an alarm: raised (active), acknowledged by a person, cleared by the data."""

    ACTIVE = "active"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class TicketStatus(StrEnum):
    """Life of a rectification ticket (整改单)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RECTIFIED = "rectified"
    CLOSED = "closed"
    REJECTED = "rejected"


class TicketSource(StrEnum):
    """What kind of finding opened a ticket (the ``tickets.source`` check constraint)."""

    ALARM = "alarm"
    VIOLATION = "violation"
    INSPECTION = "inspection"
    MANUAL = "manual"
    RAPID_TEST = "rapid_test"
    COMPLAINT = "complaint"


class Resolution(StrEnum):
    """Granularity of a reading series: raw readings or 5-minute / 1-hour rollups."""

    RAW = "raw"
    FIVE_MIN = "5m"
    ONE_HOUR = "1h"


class AlarmPublic(Public):
    """A temperature, offline, battery or camera alarm, with the ticket it opened or joined."""

    id: int
    alarm_key: str
    site_id: str
    sensor_id: str | None
    camera_id: str | None
    rule: str
    tier: int
    status: AlarmStatus
    started_at: datetime
    raised_at: datetime
    cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    peak_temp_c: float | None
    details: dict[str, Any]
    ticket_id: int | None = Field(description="Ticket this alarm opened or added to, if any.")


class AlarmsPublic(BaseModel):
    """A page of alarms, newest first."""

    data: list[AlarmPublic]
    count: int = Field(description="Alarms matching the filters, over all pages.")
    limit: int
    offset: int


class AlarmAcknowledge(BaseModel):
    """An acknowledgement; the signed-in user is recorded as the one who acknowledged."""

    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(
        default=None,
        max_length=100,
        deprecated=True,
        description="Ignored: the signed-in user (their person id, else username) is recorded.",
    )
    note: str = Field(default="", max_length=2000)


class TicketPublic(Public):
    """A rectification ticket (整改单) as listed."""

    id: int
    ticket_no: str
    site_id: str
    source: str
    rule: str
    subject: str
    tier: int
    status: TicketStatus
    title: str
    opened_at: datetime
    due_at: datetime
    acknowledged_at: datetime | None
    closed_at: datetime | None
    escalation_level: int
    occurrences: int
    last_occurrence_at: datetime
    close_proposed_at: datetime | None = Field(
        description="When the data showed the fix (e.g. the alarm cleared); a person confirms."
    )
    overdue: bool = Field(description="Not closed and past its deadline.")
    rectified_at: datetime | None = Field(description="When the fix (note + photo) came in.")
    rectified_by: str | None = None
    verified_at: datetime | None = Field(
        description="When a person verified the fix and closed the ticket."
    )
    verified_by: str | None = None
    rejected_at: datetime | None = Field(description="Last time a fix was rejected.")
    reopened_count: int = Field(description="Times the ticket was reopened after closing.")
    reopened_at: datetime | None = None
    card: Literal["yellow", "red"] | None = Field(
        description="Tier-1 overdue warning card (黄牌 / 红牌); escalation_level is the step."
    )


class TicketsPublic(BaseModel):
    """A page of tickets, newest first."""

    data: list[TicketPublic]
    count: int = Field(
        description="Tickets matching the filters over all pages: exact up to 10,000, "
        "past that PostgreSQL's estimate (see count_is_estimate)."
    )
    count_is_estimate: bool = Field(
        default=False, description="True when more than 10,000 match and count is an estimate."
    )
    limit: int
    offset: int


class TicketEventPublic(Public):
    """One entry of a ticket's append-only timeline."""

    id: int
    at: datetime
    actor: str
    actor_name: str | None = Field(
        default=None,
        description="Who acted, as people know them: the person's name where the user or the "
        "notice link has one, else the username; null for the system (the ticket engine).",
    )
    kind: str
    note: str
    data: dict[str, Any]


class TicketPolicyPublic(Public):
    """The insurance policy (食品安全责任险) of the site in force when the ticket opened."""

    id: int
    insurer: str
    policy_no: str
    starts_on: date
    ends_on: date


class TicketDetailPublic(TicketPublic):
    """A ticket with its details, timeline, findings and the policy in force."""

    details: dict[str, Any]
    events: list[TicketEventPublic]
    finding_ids: list[int]
    policy: TicketPolicyPublic | None = Field(
        default=None, description="The site's policy in force when the ticket was opened."
    )
    close_confirmable_at: datetime | None = Field(
        default=None,
        description="From when a person may confirm the close the data proposed "
        "(close_proposed_at + BK_API_CLOSE_STABLE_MIN); null when none is proposed.",
    )


class SitePublic(Public):
    """A canteen with what is wrong there right now."""

    id: str
    region_id: str
    name: str
    address: str
    open_tickets: int
    overdue_tickets: int
    active_alarms: int


class SitesPublic(BaseModel):
    """Every site, by id."""

    data: list[SitePublic]
    count: int


class ReadingPointPublic(Public):
    """One point of a series: a raw reading, or a bucket's average with min and max."""

    ts: datetime
    temp_c: float = Field(description="The reading, or the bucket's average.")
    temp_min_c: float | None = None
    temp_max_c: float | None = None
    n: int = Field(default=1, description="Readings in the point.")
    humidity_pct: float | None = None
    door_open: bool | None = None
    battery_pct: float | None = None


class ReadingsPublic(BaseModel):
    """A sensor's readings between two times."""

    sensor_id: str
    resolution: Resolution
    from_ts: datetime
    to_ts: datetime
    truncated: bool = Field(description="More points exist than the limit returned.")
    points: list[ReadingPointPublic]


class AttemptPublic(Public):
    """One delivery attempt of a notification."""

    id: int
    at: datetime
    ok: bool
    detail: str
    duration_ms: float


class NotificationPublic(Public):
    """A notification in the outbox with its delivery log (secrets in URLs are masked)."""

    id: int
    ticket_id: int | None
    person_id: str | None
    channel: str
    address: str
    subject: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    log: list[AttemptPublic]


class NotificationsPublic(BaseModel):
    """A page of notifications, newest first."""

    data: list[NotificationPublic]
    count: int
    limit: int
    offset: int


class HealthPublic(BaseModel):
    """Liveness and database reachability."""

    status: str
    database: bool
