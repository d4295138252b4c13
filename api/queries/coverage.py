"""Supervision coverage (包保覆盖) at a glance: the figures a region reports upward.

Per business in the caller's scope: its director (食品安全总监), officer (食品安全员) and
包保 cadre by name, how many supervision visits its region's frequency makes due in the
period ending on the given day, how many were paid, and the last one. The totals are
counted from those rows, so the page, the CSV and the XLSX always agree.

Daily checks (日管控) come from the officer's duties (``duty_sites``, ``daily_checks``):
a business keeping the daily duties since on or before the day is due its check that day;
done means its check of that day is recorded.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from api.auth.scope import SiteScope
from api.services.sample_deadlines import meal_counts
from api.services.spreadsheet import table_csv, table_xlsx
from api.services.supervision import CADRE_ROLE, SupervisionSettings
from bkcommon.localtime import fmt_local, region_zone_name
from bkcommon.timeutil import utcnow

Conn = psycopg.Connection[Any]
Lang = Literal["zh-CN", "en"]


class SiteCoveragePublic(BaseModel):
    """One business's people and visits."""

    site_id: str
    site_name: str
    region_id: str
    directors: list[str]
    officers: list[str]
    cadres: list[str]
    fully_assigned: bool = Field(description="A director, an officer and a cadre are named.")
    period_days: int
    visits_due: int
    visits_done: int = Field(description="Visits in the period ending on the given day.")
    on_schedule: bool
    daily_check_due: bool = Field(description="The business keeps the daily duties that day.")
    daily_check_done: bool = Field(description="Its daily check of that day is recorded.")
    meals_scheduled: int = Field(0, description="Meals its meal schedule serves that day.")
    meals_sampled: int = Field(0, description="Of those, meals with food samples on record.")
    meals_overdue: int = Field(0, description="Meals past their sample deadline without samples.")
    frequency_region: str | None = Field(
        description="The region whose frequency applies; null: the default."
    )
    last_visit_at: datetime | None


class CoverageTotalsPublic(BaseModel):
    """The region's figures: counted from the site rows."""

    sites: int
    with_director: int
    with_officer: int
    with_cadre: int
    fully_assigned: int
    visits_due: int
    visits_done: int = Field(description="Visits paid, each site counted up to its due.")
    sites_on_schedule: int
    daily_checks_due_today: int = Field(description="Businesses keeping the daily duties.")
    daily_checks_done_today: int = Field(description="Businesses whose check is recorded.")


class CoveragePublic(BaseModel):
    """Coverage on ``on`` for the caller's sites."""

    on: date
    default_period_days: int
    default_visits: int
    totals: CoverageTotalsPublic
    sites: list[SiteCoveragePublic]


_QUERY = f"""
WITH RECURSIVE scoped AS (
    SELECT s.id, s.name, s.region_id FROM sites s WHERE __SCOPE__
), up(site_id, region_id, depth) AS (
    SELECT id, region_id, 0 FROM scoped
    UNION ALL
    SELECT up.site_id, r.parent_id, up.depth + 1
    FROM up JOIN regions r ON r.id = up.region_id
    WHERE r.parent_id IS NOT NULL AND up.depth < 32
), freq AS (
    SELECT DISTINCT ON (up.site_id) up.site_id, f.region_id, f.period_days, f.visits
    FROM up JOIN supervision_frequency f ON f.region_id = up.region_id
    ORDER BY up.site_id, up.depth
), people_of AS (
    SELECT sp.site_id, sp.role, array_agg(p.name ORDER BY p.name, p.id) AS names
    FROM site_people sp JOIN people p ON p.id = sp.person_id
    WHERE sp.site_id IN (SELECT id FROM scoped)
    GROUP BY sp.site_id, sp.role
), sized AS (
    SELECT sc.*, fr.region_id AS frequency_region,
           coalesce(fr.period_days, %(dp)s) AS period_days,
           coalesce(fr.visits, %(dv)s) AS visits_due
    FROM scoped sc LEFT JOIN freq fr ON fr.site_id = sc.id
)
SELECT z.id AS site_id, z.name AS site_name, z.region_id, z.frequency_region,
       z.period_days, z.visits_due,
       coalesce((SELECT names FROM people_of WHERE site_id = z.id AND role = 'director'),
                '{{}}') AS directors,
       coalesce((SELECT names FROM people_of WHERE site_id = z.id AND role = 'officer'),
                '{{}}') AS officers,
       coalesce((SELECT names FROM people_of WHERE site_id = z.id AND role = '{CADRE_ROLE}'),
                '{{}}') AS cadres,
       (SELECT count(*) FROM supervision_visits v
        WHERE v.site_id = z.id
          AND (v.visited_at AT TIME ZONE %(tz)s)::date
              BETWEEN %(on)s::date - z.period_days + 1 AND %(on)s::date)::int AS visits_done,
       (SELECT max(v.visited_at) FROM supervision_visits v
        WHERE v.site_id = z.id
          AND (v.visited_at AT TIME ZONE %(tz)s)::date <= %(on)s::date) AS last_visit_at,
       EXISTS (SELECT 1 FROM duty_sites d
               WHERE d.site_id = z.id AND d.since <= %(on)s::date) AS daily_check_due,
       EXISTS (SELECT 1 FROM daily_checks c
               WHERE c.site_id = z.id AND c.check_date = %(on)s::date) AS daily_check_done
FROM sized z
ORDER BY z.region_id, z.id
"""


def coverage(
    conn: Conn,
    *,
    scope: SiteScope,
    on: date,
    settings: SupervisionSettings,
    sample_grace: timedelta = timedelta(minutes=60),
) -> CoveragePublic:
    """Coverage of the caller's sites on day ``on`` (the period is the region's calendar days,
    ``BK_TIME_ZONE``, up to it), with that day's meals and food samples of the businesses
    that keep the daily duties and have a meal schedule (``sample_grace``: the samples'
    deadline after a meal's end)."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _QUERY.replace("__SCOPE__", scope.clause("s.id")),
            {
                "dp": settings.period_days,
                "dv": settings.visits,
                "on": on,
                "tz": region_zone_name(),
                **scope.params(),
            },
        ).fetchall()
    keeping = [str(r["site_id"]) for r in rows if r["daily_check_due"]]
    meals = meal_counts(conn, sites=keeping, day=on, now=utcnow(), grace=sample_grace)
    sites = [
        SiteCoveragePublic(
            **r,
            fully_assigned=bool(r["directors"] and r["officers"] and r["cadres"]),
            on_schedule=r["visits_done"] >= r["visits_due"],
            **meals.get(str(r["site_id"]), {}),
        )
        for r in rows
    ]
    totals = CoverageTotalsPublic(
        sites=len(sites),
        with_director=sum(1 for s in sites if s.directors),
        with_officer=sum(1 for s in sites if s.officers),
        with_cadre=sum(1 for s in sites if s.cadres),
        fully_assigned=sum(1 for s in sites if s.fully_assigned),
        visits_due=sum(s.visits_due for s in sites),
        visits_done=sum(min(s.visits_done, s.visits_due) for s in sites),
        sites_on_schedule=sum(1 for s in sites if s.on_schedule),
        daily_checks_due_today=sum(1 for s in sites if s.daily_check_due),
        daily_checks_done_today=sum(1 for s in sites if s.daily_check_done),
    )
    return CoveragePublic(
        on=on,
        default_period_days=settings.period_days,
        default_visits=settings.visits,
        totals=totals,
        sites=sites,
    )


COLUMNS: tuple[tuple[str, str], ...] = (
    ("单位编号", "Site id"),
    ("单位", "Site"),
    ("区域", "Region"),
    ("食品安全总监", "Director"),
    ("食品安全员", "Officer"),
    ("包保干部", "Cadre"),
    ("责任人齐全", "Fully assigned"),
    ("周期(天)", "Period (days)"),
    ("应督导", "Visits due"),
    ("已督导", "Visits done"),
    ("按期", "On schedule"),
    ("最近督导(当地时间)", "Last visit (local time)"),
    ("今日日管控", "Daily check today"),
    ("留样餐次(已留/应留)", "Meals sampled / scheduled"),
    ("逾期未留样餐次", "Meals overdue without samples"),
)


def _row(s: SiteCoveragePublic, lang: Lang) -> list[object]:
    yes, no = ("是", "否") if lang == "zh-CN" else ("yes", "no")
    last = fmt_local(s.last_visit_at, missing="")  # the region's day, as a person reads it
    return [
        s.site_id,
        s.site_name,
        s.region_id,
        "、".join(s.directors),
        "、".join(s.officers),
        "、".join(s.cadres),
        yes if s.fully_assigned else no,
        s.period_days,
        s.visits_due,
        s.visits_done,
        yes if s.on_schedule else no,
        last,
        (yes if s.daily_check_done else no) if s.daily_check_due else "",
        f"{s.meals_sampled}/{s.meals_scheduled}" if s.meals_scheduled else "",
        s.meals_overdue if s.meals_scheduled else "",
    ]


def _header(lang: Lang) -> list[str]:
    i = 1 if lang == "en" else 0
    return [c[i] for c in COLUMNS]


def coverage_csv(cov: CoveragePublic, *, lang: Lang) -> str:
    """The coverage rows as CSV, header first (the caller prepends a BOM for Excel)."""
    return table_csv(_header(lang), (_row(s, lang) for s in cov.sites))


def coverage_xlsx(cov: CoveragePublic, *, lang: Lang) -> bytes:
    """The coverage rows as an XLSX workbook with a bold frozen header row."""
    sheet = "包保覆盖" if lang == "zh-CN" else "Coverage"
    return table_xlsx(sheet, _header(lang), (_row(s, lang) for s in cov.sites))
