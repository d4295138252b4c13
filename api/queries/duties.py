"""Today's daily checks across the caller's sites: who has done theirs, who is overdue.

The regulator's view of the daily control at a glance (and the officer's own reminder):
one row per site in scope that keeps the daily duties, with whether today's check (China
time) is done and whether its deadline has passed without it, and, for a site with a meal
schedule, how many of today's meals have their food samples and how many are overdue.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from api.auth.scope import SiteScope
from api.services.sample_deadlines import meal_counts
from bkcommon.localtime import region_zone_name

Conn = psycopg.Connection[Any]


class DutyTodayPublic(BaseModel):
    """One site's daily check today."""

    site_id: str
    site_name: str
    business_type: str
    day: date
    deadline_at: datetime
    done: bool
    completed_at: datetime | None
    overdue: bool
    meals_scheduled: int = Field(0, description="Meals the site's meal schedule serves today.")
    meals_sampled: int = Field(0, description="Of those, meals with food samples on record.")
    meals_overdue: int = Field(
        0, description="Meals past their sample deadline without samples (each opens a ticket)."
    )


def duties_today(
    conn: Conn,
    *,
    scope: SiteScope,
    day: date,
    now: datetime,
    grace: timedelta = timedelta(minutes=60),
) -> list[DutyTodayPublic]:
    """Sites in scope that keep duties, overdue first, then by site id, with today's meals and
    their food samples where the site has a meal schedule (``grace``: the sample deadline
    after a meal's end)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT d.site_id, s.name AS site_name, d.business_type, %(day)s::date AS day,
                       (%(day)s::date + d.deadline_local) AT TIME ZONE %(tz)s
                           AS deadline_at,
                       c.id IS NOT NULL AS done, c.completed_at
                FROM duty_sites d JOIN sites s ON s.id = d.site_id
                LEFT JOIN daily_checks c ON c.site_id = d.site_id AND c.check_date = %(day)s
                WHERE {scope.clause("d.site_id")} AND d.since <= %(day)s
                ORDER BY d.site_id""",
            {"day": day, "tz": region_zone_name(), **scope.params()},
        ).fetchall()
    sites = [str(r["site_id"]) for r in rows]
    meals = meal_counts(conn, sites=sites, day=day, now=now, grace=grace)
    out = [
        DutyTodayPublic(
            **r,
            overdue=not r["done"] and r["deadline_at"] <= now,
            **meals.get(str(r["site_id"]), {}),
        )
        for r in rows
    ]
    return sorted(out, key=lambda r: (not r.overdue, r.site_id))
