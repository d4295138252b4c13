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
from bkcommon.disinfection import meals_served
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
    meals = meals_on_day(sites, day=day, now=now, conn=conn, grace=grace)
    out = [
        DutyTodayPublic(
            **r,
            overdue=not r["done"] and r["deadline_at"] <= now,
            **meals.get(str(r["site_id"]), {}),
        )
        for r in rows
    ]
    return sorted(out, key=lambda r: (not r.overdue, r.site_id))


def meals_on_day(
    sites: list[str], *, day: date, now: datetime, conn: Conn, grace: timedelta
) -> dict[str, dict[str, int]]:
    """Per site with a meal schedule: today's meals, those sampled, those overdue (the food
    sample rule's view, ``api.services.sample_deadlines``). Two queries for all the sites."""
    if not sites:
        return {}
    schedules = conn.execute(
        "SELECT site_id, timezone, services, days_off FROM meal_schedules WHERE site_id = ANY(%s)",
        (sites,),
    ).fetchall()
    if not schedules:
        return {}
    sampled = {
        (str(site), str(meal))
        for site, meal in conn.execute(
            "SELECT DISTINCT site_id, meal FROM food_samples "
            "WHERE site_id = ANY(%s) AND meal_date = %s",
            ([str(r[0]) for r in schedules], day),
        ).fetchall()
    }
    out: dict[str, dict[str, int]] = {}
    for site, tz, services, days_off in schedules:
        served = meals_served(str(tz), list(services), list(days_off), day, day)
        done = [m for m in served if (str(site), m.meal) in sampled]
        late = [m for m in served if (str(site), m.meal) not in sampled and m.end + grace <= now]
        out[str(site)] = {
            "meals_scheduled": len(served),
            "meals_sampled": len(done),
            "meals_overdue": len(late),
        }
    return out
