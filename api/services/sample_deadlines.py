"""A meal served without its food samples on record becomes a ticket (留样未按规定).

Every dish of every meal must be sampled (at least 125 g, kept at least 48 hours:
``api.services.food_samples``). For each site that keeps the daily duties (a ``duty_sites``
row) and has a meal schedule (``meal_schedules``, the one the disinfection windows use),
each meal whose samples fall due (the meal's end plus ``sample_grace_min``) on or after the
day the site began keeping the duties (at most ``lookback_days`` back, so a worker that was
down catches up without flooding) and are not recorded by then gets one finding: rule
``food_sample_missed``, key ``food_sample_missed:<site>:<date>:<meal>``. The ticket engine
opens its ticket and alerts the officer; the escalation ladder takes it from there, as for a
missed daily check. Later meals missed while that ticket is open are added to it as
occurrences. The finding key makes the check idempotent across workers and restarts, and a
sample recorded late (but before the check looks) is not a miss: the record is what the
inspector reads.

The officer's and the regulator's views of one day (``meal_states``) use the same schedule
expansion, the same deadline and the same ``since``: a meal is shown overdue exactly when the
check would (or did) record it.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from pydantic import BaseModel, Field

from api.auth.scope import SiteScope
from api.services.duties import require_site
from api.services.duty_deadlines import LOG_EACH_MAX, DutySettings
from api.services.tickets import FINDINGS_CHANNEL
from bkcommon.disinfection import MealServed, meals_served
from bkcommon.localtime import local_date, region_zone

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

RULE_SAMPLE_MISSED = "food_sample_missed"
SUBJECT = "food_sample"

_SITES = """
SELECT d.site_id, d.since, m.timezone, m.services, m.days_off
FROM duty_sites AS d JOIN meal_schedules AS m ON m.site_id = d.site_id
ORDER BY d.site_id
"""

_INSERT = """
INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at, payload)
SELECT 'food_sample_missed:' || o.site_id || ':' || o.day || ':' || o.meal,
       'manual', o.site_id, %(subject)s, %(rule)s, %(tier)s, o.due,
       jsonb_build_object('meal_date', o.day, 'meal', o.meal, 'meal_end', o.meal_end,
                          'due_at', o.due)
FROM unnest(%(sites)s::text[], %(days)s::date[], %(meals)s::text[], %(ends)s::timestamptz[],
            %(dues)s::timestamptz[]) AS o (site_id, day, meal, meal_end, due)
WHERE NOT EXISTS (SELECT 1 FROM food_samples s
                  WHERE s.site_id = o.site_id AND s.meal_date = o.day AND s.meal = o.meal)
ON CONFLICT (finding_key) DO NOTHING
RETURNING site_id, payload ->> 'meal_date', payload ->> 'meal'
"""


def _kept_from(since: date | None) -> datetime | None:
    """The instant from which a site's sample deadlines are enforced: 00:00 of its duty
    ``since`` in the region's calendar; None for a site that keeps no duties."""
    return None if since is None else datetime.combine(since, time(0), region_zone())


def meals_due(conn: Conn, *, now: datetime, settings: DutySettings) -> list[tuple[str, MealServed]]:
    """(site, meal) for every meal whose samples were due by ``now`` within the lookback."""
    grace = settings.sample_grace
    out: list[tuple[str, MealServed]] = []
    for site_id, since, tz, services, days_off in conn.execute(_SITES).fetchall():
        # ``since`` is a date of the region's calendar: the deadlines that fall on or after
        # it are enforced, as for the daily check (a meal's day is in its schedule's zone,
        # so the day before is looked at too: a late dinner's samples fall due after midnight)
        kept_from = _kept_from(since)
        assert kept_from is not None  # duty_sites.since is NOT NULL
        zone = ZoneInfo(str(tz))
        today = now.astimezone(zone).date()
        first = max(
            kept_from.astimezone(zone).date() - timedelta(days=1),
            today - timedelta(days=settings.lookback_days),
        )
        for meal in meals_served(str(tz), list(services), list(days_off), first, today):
            if kept_from <= meal.end + grace <= now:
                out.append((str(site_id), meal))
    return out


def check_sample_deadlines(conn: Conn, *, now: datetime, settings: DutySettings) -> int:
    """Record a finding for every meal served without samples by its due time; return how
    many are new."""
    due = meals_due(conn, now=now, settings=settings)
    if not due:
        return 0
    grace = settings.sample_grace
    with conn.transaction():
        rows = conn.execute(
            _INSERT,
            {
                "subject": SUBJECT,
                "rule": RULE_SAMPLE_MISSED,
                "tier": settings.sample_missed_tier,
                "sites": [site for site, _ in due],
                "days": [m.day for _, m in due],
                "meals": [m.meal for _, m in due],
                "ends": [m.end for _, m in due],
                "dues": [m.end + grace for _, m in due],
            },
        ).fetchall()
        if rows:
            conn.execute("SELECT pg_notify(%s, %s)", (FINDINGS_CHANNEL, RULE_SAMPLE_MISSED))
    for site_id, day, meal in rows[:LOG_EACH_MAX]:
        extra = {"site_id": site_id}
        logger.warning("no food sample recorded for %s %s at %s", day, meal, site_id, extra=extra)
    if len(rows) > LOG_EACH_MAX:
        logger.warning(
            "%d more meals without food samples (findings recorded)", len(rows) - LOG_EACH_MAX
        )
    return len(rows)


class MealSamplesDue(BaseModel):
    """One scheduled meal of a day and whether its food samples are on record."""

    meal: str
    meal_date: date = Field(
        description="The meal's date in its schedule's zone: its samples are recorded under it."
    )
    start: datetime
    end: datetime
    samples_due_at: datetime = Field(description="The meal's end plus the grace.")
    dishes_sampled: int = Field(description="Dishes with a sample on record for this meal.")
    sampled: bool
    overdue: bool = Field(
        description="Due and still without a sample at a site that keeps the duties (from "
        "its `since` on): a ticket opens."
    )


def meal_states(
    conn: Conn, *, sites: list[str], day: date | None, now: datetime, grace: timedelta
) -> dict[str, list[MealSamplesDue]]:
    """Each site's scheduled meals of ``day`` (its schedule's calendar; ``None``: the site's
    today there, which is China's today for every schedule in China's zone) with their
    samples, in serving order; sites without a meal schedule are absent. Two queries for all
    sites."""
    if not sites:
        return {}
    schedules = conn.execute(
        "SELECT m.site_id, m.timezone, m.services, m.days_off, d.since "
        "FROM meal_schedules AS m LEFT JOIN duty_sites AS d ON d.site_id = m.site_id "
        "WHERE m.site_id = ANY(%s)",
        (sites,),
    ).fetchall()
    if not schedules:
        return {}
    days = {str(r[0]): day or now.astimezone(ZoneInfo(str(r[1]))).date() for r in schedules}
    dishes = {
        (str(site), str(meal)): int(n)
        for site, meal, n in conn.execute(
            "SELECT s.site_id, s.meal, count(*) FROM food_samples AS s "
            "JOIN unnest(%s::text[], %s::date[]) AS d (site_id, day) "
            "ON s.site_id = d.site_id AND s.meal_date = d.day GROUP BY s.site_id, s.meal",
            (list(days), list(days.values())),
        ).fetchall()
    }
    out: dict[str, list[MealSamplesDue]] = {}
    for site, tz, services, days_off, since in schedules:
        # overdue means what the ticket rule enforces: a site that keeps no duties is not
        # checked, and a deadline before the day it began keeping them is not a miss
        kept_from = _kept_from(since)
        meals = []
        on = days[str(site)]
        for m in meals_served(str(tz), list(services), list(days_off), on, on):
            n = dishes.get((str(site), m.meal), 0)
            due = m.end + grace
            enforced = kept_from is not None and kept_from <= due
            meals.append(
                MealSamplesDue(
                    meal=m.meal,
                    meal_date=m.day,
                    start=m.start,
                    end=m.end,
                    samples_due_at=due,
                    dishes_sampled=n,
                    sampled=n > 0,
                    overdue=n == 0 and enforced and due <= now,
                )
            )
        out[str(site)] = sorted(meals, key=lambda x: x.start)
    return out


def meal_counts(
    conn: Conn, *, sites: list[str], day: date, now: datetime, grace: timedelta
) -> dict[str, dict[str, int]]:
    """Per site with a meal schedule: ``meals_scheduled``, ``meals_sampled`` and
    ``meals_overdue`` of ``day`` (the regulator's lists and exports). The region's today
    means each site's today in its schedule's zone, as on the officer's page."""
    on = None if day == local_date(now) else day
    return {
        site: {
            "meals_scheduled": len(meals),
            "meals_sampled": sum(m.sampled for m in meals),
            "meals_overdue": sum(m.overdue for m in meals),
        }
        for site, meals in meal_states(conn, sites=sites, day=on, now=now, grace=grace).items()
    }


def meals_of_day(
    conn: Conn,
    *,
    site_id: str,
    scope: SiteScope,
    day: date | None,
    now: datetime,
    settings: DutySettings,
) -> list[MealSamplesDue]:
    """The site's scheduled meals of ``day`` (``None``: today in its schedule's zone) with
    their samples, so the officer sees what is still to be sampled before it becomes a
    ticket. A site without a meal schedule has none (the product cannot know its meals)."""
    require_site(conn, scope, site_id)
    states = meal_states(conn, sites=[site_id], day=day, now=now, grace=settings.sample_grace)
    return states.get(site_id, [])
