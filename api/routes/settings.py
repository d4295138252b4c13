"""Rectification deadlines and capture triage modes, set by admins and regulators.

An admin sees and sets everything. A regulator sees the overrides that can apply to its
sites (its region and sub-regions, plus the province-wide ones) and sets only those of its
own region tree (deadlines) or of cameras at its sites (triage). Other roles get 403.
Every change is written to the audit log.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth.resolve import region_tree
from api.auth.scope import Principal, Role
from api.auth.users import audit
from api.deps import AdminUser, Conn, ConnDep, ScopeDep, SettingsDep, require_role
from api.input_types import IsoDate
from api.schemas import ErrorPublic
from api.services.deadlines import set_deadline_rule
from api.services.triage import set_triage_mode
from api.services.workdays import (
    MAX_WORKING_DAYS,
    CalendarDay,
    list_calendar_days,
    set_calendar_days,
)
from bkcommon.localtime import local_today

router = APIRouter(prefix="/settings", tags=["settings"])

SettingsUser = Annotated[Principal, Depends(require_role(Role.ADMIN, Role.REGULATOR))]

_REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorPublic, "description": "Outside your region or sites, or your role."},
}


class DeadlineRuleIn(BaseModel):
    """One override: hours, or working days, to rectify tickets of a rule, or of a tier, in a
    region (or all)."""

    model_config = ConfigDict(extra="forbid")

    region_id: str | None = Field(
        default=None, max_length=100, description="Region (with sub-regions); none: everywhere."
    )
    rule: str | None = Field(default=None, min_length=1, max_length=100)
    # strict: JSON true is not tier 1, nor one hour
    tier: int | None = Field(default=None, ge=1, le=3, strict=True)
    hours: float | None = Field(
        default=None, gt=0, le=2160, strict=True, description="Time allowed to rectify."
    )
    working_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_WORKING_DAYS,
        strict=True,
        description="Or working days allowed (工作日: weekends and the calendar's holidays do "
        "not count); the deadline is midnight after the last one.",
    )

    @model_validator(mode="after")
    def _rule_or_tier(self) -> DeadlineRuleIn:
        if self.rule is None and self.tier is None:
            raise ValueError("give a rule or a tier")
        if self.rule is not None and self.tier is not None:
            raise ValueError("give a rule or a tier, not both")
        if (self.hours is None) == (self.working_days is None):
            raise ValueError("give hours or working_days, one of them")
        return self


class DeadlineRulePublic(DeadlineRuleIn):
    """A stored override, and whether you may change it."""

    editable: bool
    region_name: str | None = Field(
        default=None, description="The region's name (null: the override applies everywhere)."
    )


class DeadlinesPublic(BaseModel):
    """Tier defaults (``BK_API_DEADLINE_TIER*_H``) and the overrides you can see.

    The most specific override wins: region + rule, rule, region + tier, then the default;
    a nearer region beats its parent.
    """

    defaults_h: dict[int, float]
    rules: list[DeadlineRulePublic]


class TriageModeIn(BaseModel):
    """Whether captures of a camera and/or rule open tickets at once or wait for review."""

    model_config = ConfigDict(extra="forbid")

    camera_id: str | None = Field(default=None, min_length=1, max_length=100)
    rule: str | None = Field(default=None, min_length=1, max_length=100)
    mode: Literal["direct", "review"]

    @model_validator(mode="after")
    def _camera_or_rule(self) -> TriageModeIn:
        if self.camera_id is None and self.rule is None:
            raise ValueError("give a camera or a rule (the default is BK_API_TRIAGE_DEFAULT)")
        return self


class TriageModePublic(TriageModeIn):
    """A stored mode, and whether you may change it."""

    editable: bool


class TriageModesPublic(BaseModel):
    """The default mode and the per-camera / per-rule modes you can see."""

    default: Literal["direct", "review"]
    modes: list[TriageModePublic]


def _ancestors_and_tree(conn: Conn, region_id: str | None) -> list[str]:
    """The regions whose overrides can reach ``region_id``'s sites: its tree and its parents."""
    if region_id is None:
        return []
    rows = conn.execute(
        """WITH RECURSIVE up(id, depth) AS (
               SELECT id, 0 FROM regions WHERE id = %s
               UNION ALL SELECT r.parent_id, up.depth + 1 FROM regions r JOIN up ON r.id = up.id
               WHERE r.parent_id IS NOT NULL AND up.depth < 32)
           SELECT id FROM up""",
        (region_id,),
    ).fetchall()
    return sorted({str(r[0]) for r in rows} | region_tree(conn, region_id))


def _deadlines(conn: Conn, user: Principal, settings: SettingsDep) -> DeadlinesPublic:
    admin = user.role is Role.ADMIN
    own = region_tree(conn, user.region_id)
    reach = _ancestors_and_tree(conn, user.region_id)
    rows = conn.execute(
        """SELECT d.region_id, d.rule, d.tier, d.hours, r.name, d.working_days
             FROM deadline_rules d LEFT JOIN regions r ON r.id = d.region_id
            WHERE %(all)s OR d.region_id IS NULL OR d.region_id = ANY(%(reach)s)
            ORDER BY d.region_id NULLS FIRST, d.rule NULLS LAST, d.tier""",
        {"all": admin, "reach": reach},
    ).fetchall()
    return DeadlinesPublic(
        defaults_h={t: settings.deadline(t).total_seconds() / 3600 for t in (1, 2, 3)},
        rules=[
            DeadlineRulePublic(
                region_id=r[0],
                rule=r[1],
                tier=r[2],
                hours=None if r[3] is None else float(r[3]),
                working_days=r[5],
                editable=admin or (r[0] is not None and r[0] in own),
                region_name=r[4],
            )
            for r in rows
        ],
    )


@router.get("/deadlines", response_model=DeadlinesPublic, responses=_REFUSED)
def read_deadlines(conn: ConnDep, user: SettingsUser, settings: SettingsDep) -> DeadlinesPublic:
    """Deadline defaults per tier and the overrides that can apply to your sites."""
    return _deadlines(conn, user, settings)


@router.put("/deadlines", response_model=DeadlinesPublic, responses=_REFUSED)
def put_deadline(
    conn: ConnDep, user: SettingsUser, settings: SettingsDep, body: DeadlineRuleIn
) -> DeadlinesPublic:
    """Create or replace one override; a regulator only for its region or a sub-region.

    New tickets get the new deadline; open tickets keep theirs.
    """
    if user.role is not Role.ADMIN and (
        body.region_id is None or body.region_id not in region_tree(conn, user.region_id)
    ):
        raise HTTPException(status_code=403, detail="only deadlines of your region tree")
    if body.region_id is not None and not region_tree(conn, body.region_id):
        raise HTTPException(status_code=422, detail=f"unknown region {body.region_id!r}")
    with conn.transaction():
        set_deadline_rule(
            conn,
            hours=body.hours,
            working_days=body.working_days,
            region_id=body.region_id,
            rule=body.rule,
            tier=body.tier,
        )
        audit(conn, actor=user.username, action="settings.deadline", target=body.region_id or "*",
              data=body.model_dump())  # fmt: skip
    return _deadlines(conn, user, settings)


def _triage(
    conn: Conn, user: Principal, scope: ScopeDep, settings: SettingsDep
) -> TriageModesPublic:
    admin = user.role is Role.ADMIN
    rows = conn.execute(
        f"""SELECT m.camera_id, m.rule, m.mode, c.site_id FROM triage_modes m
            LEFT JOIN cameras c ON c.id = m.camera_id
            WHERE m.camera_id IS NULL OR {scope.clause("c.site_id")}
            ORDER BY m.camera_id NULLS FIRST, m.rule NULLS FIRST""",
        scope.params(),
    ).fetchall()
    return TriageModesPublic(
        default=settings.triage_default,
        modes=[
            TriageModePublic(
                camera_id=r[0],
                rule=r[1],
                mode="review" if r[2] == "review" else "direct",
                editable=admin or (r[0] is not None and r[3] is not None),
            )
            for r in rows
        ],
    )


@router.get("/triage", response_model=TriageModesPublic, responses=_REFUSED)
def read_triage(
    conn: ConnDep, user: SettingsUser, scope: ScopeDep, settings: SettingsDep
) -> TriageModesPublic:
    """The default triage mode and the camera / rule modes that apply to your sites."""
    return _triage(conn, user, scope, settings)


@router.put("/triage", response_model=TriageModesPublic, responses=_REFUSED)
def put_triage(
    conn: ConnDep, user: SettingsUser, scope: ScopeDep, settings: SettingsDep, body: TriageModeIn
) -> TriageModesPublic:
    """Create or replace a mode; a regulator only for a camera at one of its sites.

    ``review`` holds that camera's (or rule's) captures for a person to confirm or dismiss;
    ``direct`` opens tickets at once.
    """
    site = None
    if body.camera_id is not None:
        row = conn.execute("SELECT site_id FROM cameras WHERE id = %s", (body.camera_id,))
        found = row.fetchone()
        site = str(found[0]) if found else None
    if user.role is not Role.ADMIN and (site is None or not scope.allows(site)):
        raise HTTPException(status_code=403, detail="only cameras at your sites")
    if body.camera_id is not None and site is None:
        raise HTTPException(status_code=422, detail=f"unknown camera {body.camera_id!r}")
    with conn.transaction():
        set_triage_mode(conn, mode=body.mode, camera_id=body.camera_id, rule=body.rule)
        audit(conn, actor=user.username, action="settings.triage", target=body.camera_id or "*",
              data=body.model_dump())  # fmt: skip
    return _triage(conn, user, scope, settings)


class CalendarIn(BaseModel):
    """Exceptions to Monday-to-Friday for the region's calendar, e.g. a year's holidays and
    adjusted working weekends (调休) from the State Council's notice."""

    model_config = ConfigDict(extra="forbid")

    days: list[CalendarDay] = Field(min_length=1, max_length=400)


class CalendarPublic(BaseModel):
    """The calendar's exceptions in a range (every other day: Monday-Friday work)."""

    start: date
    end: date
    days: list[CalendarDay]


_CALENDAR_SPAN = timedelta(days=800)


def _calendar(conn: Conn, start: date | None, end: date | None) -> CalendarPublic:
    start = start or local_today()
    end = end or start + timedelta(days=365)
    if end < start or end - start > _CALENDAR_SPAN:
        raise HTTPException(status_code=422, detail="end must be after start, at most 800 days")
    return CalendarPublic(start=start, end=end, days=list_calendar_days(conn, start, end))


@router.get("/calendar", response_model=CalendarPublic, responses=_REFUSED)
def read_calendar(
    conn: ConnDep, _user: SettingsUser, start: IsoDate | None = None, end: IsoDate | None = None
) -> CalendarPublic:
    """Holidays on weekdays and working weekends from ``start`` (default today) to ``end``
    (default a year later), which working-day deadlines count with."""
    return _calendar(conn, start, end)


@router.put("/calendar", response_model=CalendarPublic, responses=_REFUSED)
def put_calendar(conn: ConnDep, user: AdminUser, body: CalendarIn) -> CalendarPublic:
    """Set days of the calendar (admins: it is the country's). A day given as its plain kind
    (a working weekday, a weekend day off) removes its exception. New deadlines count with it;
    open tickets keep theirs."""
    with conn.transaction():
        set_calendar_days(conn, body.days)
        audit(conn, actor=user.username, action="settings.calendar", target="*",
              data={"days": [d.model_dump(mode="json") for d in body.days]})  # fmt: skip
    days = sorted(d.day for d in body.days)
    return _calendar(conn, days[0], min(days[-1], days[0] + _CALENDAR_SPAN))
