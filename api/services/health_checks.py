"""The morning health check of staff (晨检): one row per person and day; a symptom means off duty.

The symptoms are those the catering operating code (SAMR 2018 No. 12, 4.3) and the school
rules list for the morning check: fever, diarrhoea, vomiting, jaundice, sore throat with
fever, skin infection or an open hand wound. A temperature of 37.3 °C or more counts as
fever even when the symptom was not ticked. Anyone with a symptom is off duty that day.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field

from api.auth.scope import SiteScope
from api.input_types import IsoDate
from api.services.duties import DutyConflictError, DutyError, china_today, require_site

Conn = psycopg.Connection[Any]

FEVER_C = Decimal("37.3")

Symptom = Literal[
    "fever", "diarrhoea", "vomiting", "jaundice", "sore_throat", "skin_infection", "hand_wound"
]


class StaffCheckIn(BaseModel):
    """One staff member's morning check."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    staff_name: str = Field(min_length=1, max_length=100)
    temperature_c: Decimal | None = Field(default=None, ge=34, le=43, decimal_places=1)
    symptoms: list[Symptom] = Field(default_factory=list, max_length=7)
    note: str = Field(default="", max_length=500)


class HealthCheckIn(BaseModel):
    """The morning check of the staff on one day."""

    model_config = ConfigDict(extra="forbid")

    check_date: IsoDate | None = Field(default=None, description="China date; default today.")
    staff: list[StaffCheckIn] = Field(min_length=1, max_length=200)


class StaffCheckPublic(BaseModel):
    """A stored check: ``on_duty`` is false when any symptom was found."""

    id: int
    site_id: str
    check_date: date
    staff_name: str
    temperature_c: Decimal | None
    symptoms: list[str]
    on_duty: bool
    note: str
    checked_by: str
    checked_at: datetime


def record_health_checks(
    conn: Conn,
    *,
    site_id: str,
    data: HealthCheckIn,
    scope: SiteScope,
    actor: str,
    now: datetime,
) -> list[int]:
    """Store every staff member's check of the day, all or nothing; return the ids.

    409 (naming the staff entry) when a person was checked already that day.
    """
    require_site(conn, scope, site_id)
    day = data.check_date or china_today(now)
    if day > china_today(now):
        raise DutyError("check_date: must not be in the future")
    names = [s.staff_name for s in data.staff]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise DutyError(f"staff.{i}.staff_name: {name!r} is listed twice")
    ids: list[int] = []
    with conn.transaction():
        for i, s in enumerate(data.staff):
            symptoms = sorted(set(s.symptoms))
            if (
                s.temperature_c is not None
                and s.temperature_c >= FEVER_C
                and "fever" not in symptoms
            ):
                symptoms = sorted([*symptoms, "fever"])
            row = conn.execute(
                """INSERT INTO health_checks (site_id, check_date, staff_name, temperature_c,
                       symptoms, on_duty, note, checked_by, checked_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (site_id, check_date, staff_name) DO NOTHING RETURNING id""",
                (site_id, day, s.staff_name, s.temperature_c, symptoms, not symptoms, s.note,
                 actor, now),
            ).fetchone()  # fmt: skip
            if row is None:
                raise DutyConflictError(
                    f"staff.{i}.staff_name: {s.staff_name!r} was checked on {day} already"
                )
            ids.append(int(row[0]))
    return ids


def list_health_checks(
    conn: Conn, *, site_id: str, scope: SiteScope, day: date, off_duty_only: bool
) -> list[StaffCheckPublic]:
    """The day's checks of the site (or only those off duty), by name."""
    require_site(conn, scope, site_id)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT id, site_id, check_date, staff_name, temperature_c, symptoms, on_duty,
                      note, checked_by, checked_at
               FROM health_checks
               WHERE site_id = %s AND check_date = %s AND (NOT %s OR NOT on_duty)
               ORDER BY staff_name""",
            (site_id, day, off_duty_only),
        ).fetchall()
    return [StaffCheckPublic.model_validate(r) for r in rows]
