"""The director's weekly review (周排查) and the monthly dispatch report (月调度).

Both are built on figures computed from the site's own records of the period, so the
director reviews what happened rather than what someone remembers: daily checks done and
their "no" answers, morning checks and staff sent home, food samples, tickets, alarms,
disinfection checks and rapid tests. The weekly review is recorded once per ISO week by
the director. The monthly report is generated (and regenerated while a draft, keeping an
edited text), edited, then signed by the director; a signed report never changes (the
database refuses the update, ``0024_duty_reports.sql``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.auth.scope import SiteScope
from api.input_types import IsoDate
from api.services.duties import DutyConflictError, DutyError, DutyNotFoundError, require_site
from bkcommon.localtime import local_date, region_zone

Conn = psycopg.Connection[Any]


def _span(first: date, days: int) -> tuple[datetime, datetime]:
    """The UTC instants of the region's local midnight on ``first`` and ``days`` later."""
    start = datetime.combine(first, time(0), tzinfo=region_zone())
    return start.astimezone(UTC), (start + timedelta(days=days)).astimezone(UTC)


def period_figures(conn: Conn, *, site_id: str, first: date, days: int) -> dict[str, Any]:
    """The site's figures for the China-time days ``first`` .. ``first + days - 1``."""
    start, end = _span(first, days)
    last = first + timedelta(days=days - 1)
    p = {"site": site_id, "first": first, "last": last, "start": start, "end": end}
    row = conn.execute(
        """SELECT
             (SELECT count(*) FROM daily_checks WHERE site_id = %(site)s
                AND check_date BETWEEN %(first)s AND %(last)s),
             (SELECT count(*) FROM daily_check_answers a JOIN daily_checks c ON c.id = a.check_id
                WHERE c.site_id = %(site)s AND c.check_date BETWEEN %(first)s AND %(last)s
                  AND NOT a.ok),
             (SELECT count(*) FROM health_checks WHERE site_id = %(site)s
                AND check_date BETWEEN %(first)s AND %(last)s),
             (SELECT count(*) FROM health_checks WHERE site_id = %(site)s
                AND check_date BETWEEN %(first)s AND %(last)s AND NOT on_duty),
             (SELECT count(*) FROM food_samples WHERE site_id = %(site)s
                AND meal_date BETWEEN %(first)s AND %(last)s),
             (SELECT count(DISTINCT (meal_date, meal)) FROM food_samples WHERE site_id = %(site)s
                AND meal_date BETWEEN %(first)s AND %(last)s),
             (SELECT count(*) FROM findings WHERE site_id = %(site)s
                AND rule = 'food_sample_missed'
                AND (payload ->> 'meal_date')::date BETWEEN %(first)s AND %(last)s),
             (SELECT count(*) FROM tickets WHERE site_id = %(site)s
                AND opened_at >= %(start)s AND opened_at < %(end)s),
             (SELECT count(*) FROM tickets WHERE site_id = %(site)s
                AND closed_at >= %(start)s AND closed_at < %(end)s),
             (SELECT count(*) FROM tickets WHERE site_id = %(site)s AND opened_at < %(end)s
                AND (closed_at IS NULL OR closed_at >= %(end)s)),
             (SELECT count(*) FROM alarms WHERE site_id = %(site)s
                AND raised_at >= %(start)s AND raised_at < %(end)s),
             (SELECT count(*) FROM disinfection_checks WHERE site_id = %(site)s
                AND service_date BETWEEN %(first)s AND %(last)s),
             (SELECT count(*) FROM disinfection_checks WHERE site_id = %(site)s
                AND service_date BETWEEN %(first)s AND %(last)s AND outcome <> 'done'),
             (SELECT count(*) FROM rapid_tests WHERE site_id = %(site)s
                AND tested_at >= %(start)s AND tested_at < %(end)s),
             (SELECT count(*) FROM rapid_tests WHERE site_id = %(site)s
                AND tested_at >= %(start)s AND tested_at < %(end)s AND result = 'fail')""",
        p,
    ).fetchone()
    assert row is not None
    names = (
        "daily_checks_done", "daily_check_no_answers", "health_checks", "staff_off_duty",
        "food_samples", "meals_sampled", "meals_unsampled", "tickets_opened", "tickets_closed",
        "tickets_open_at_end", "alarms_raised", "disinfection_checks",
        "disinfection_not_done", "rapid_tests", "rapid_tests_failed",
    )  # fmt: skip
    figures: dict[str, Any] = {n: int(v) for n, v in zip(names, row, strict=True)}
    figures |= {"first_day": first.isoformat(), "last_day": last.isoformat(), "days": days}
    return figures


class WeeklyReviewIn(BaseModel):
    """The director's review of one week (周排查): what was found and what will be done."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    week_start: IsoDate = Field(description="The Monday of the week reviewed.")
    findings: str = Field(min_length=1, max_length=5000, description="Risks found this week.")
    measures: str = Field(default="", max_length=5000, description="What will be done.")

    @field_validator("week_start")
    @classmethod
    def _monday(cls, value: date) -> date:
        if value.isoweekday() != 1:
            raise ValueError("must be a Monday")
        return value


class WeeklyReviewPublic(BaseModel):
    """A recorded weekly review with the week's figures."""

    id: int
    site_id: str
    week_start: date
    figures: dict[str, Any]
    findings: str
    measures: str
    reviewed_by: str
    reviewed_at: datetime


def record_weekly_review(
    conn: Conn, *, site_id: str, data: WeeklyReviewIn, scope: SiteScope, actor: str, now: datetime
) -> int:
    """Store the week's review with its figures; 409 when the week is reviewed already."""
    require_site(conn, scope, site_id)
    if data.week_start > local_date(now):
        raise DutyError("week_start: the week has not begun")
    figures = period_figures(conn, site_id=site_id, first=data.week_start, days=7)
    row = conn.execute(
        """INSERT INTO weekly_reviews (site_id, week_start, figures, findings, measures,
                                       reviewed_by, reviewed_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (site_id, week_start) DO NOTHING RETURNING id""",
        (site_id, data.week_start, Jsonb(figures), data.findings, data.measures, actor, now),
    ).fetchone()
    if row is None:
        raise DutyConflictError(f"week_start: the week of {data.week_start} is reviewed already")
    return int(row[0])


def get_weekly_review(conn: Conn, *, review_id: int) -> WeeklyReviewPublic:
    """One stored review (the caller checked the scope)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT id, site_id, week_start, figures, findings, measures, reviewed_by,
                      reviewed_at FROM weekly_reviews WHERE id = %s""",
            (review_id,),
        ).fetchone()
    assert row is not None
    return WeeklyReviewPublic.model_validate(row)


def list_weekly_reviews(
    conn: Conn, *, site_id: str, scope: SiteScope, limit: int
) -> list[WeeklyReviewPublic]:
    """The site's weekly reviews, newest week first."""
    require_site(conn, scope, site_id)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """SELECT id, site_id, week_start, figures, findings, measures, reviewed_by,
                      reviewed_at
               FROM weekly_reviews WHERE site_id = %s ORDER BY week_start DESC LIMIT %s""",
            (site_id, limit),
        ).fetchall()
    return [WeeklyReviewPublic.model_validate(r) for r in rows]


MONTH_PATTERN = r"^20\d{2}-(0[1-9]|1[0-2])$"
"""``YYYY-MM`` of the years 2000-2099, like every date the API takes (``api.input_types``)."""


def month_start(text: str) -> date:
    """``YYYY-MM`` → the first day of that month."""
    return date(int(text[:4]), int(text[5:7]), 1)


def _days_in(first: date) -> int:
    nxt = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return (nxt - first).days


def draft_text(figures: dict[str, Any]) -> str:
    """The generated text of a report: the month's figures in words, for the director to edit."""
    f = figures
    return "\n".join(
        [
            f"月调度 {f['first_day']} – {f['last_day']}",
            f"日管控: {f['daily_checks_done']}/{f['days']} 天完成, "
            f"{f['daily_check_no_answers']} 项不合格",
            f"晨检: {f['health_checks']} 人次, {f['staff_off_duty']} 人次暂停上岗",
            f"留样: {f['meals_sampled']} 餐次, {f['food_samples']} 个品种, "
            f"{f.get('meals_unsampled', 0)} 餐次未按规定留样",
            f"整改单: 新开 {f['tickets_opened']}, 关闭 {f['tickets_closed']}, "
            f"月末未结 {f['tickets_open_at_end']}",
            f"报警: {f['alarms_raised']}",
            f"餐具消毒: {f['disinfection_checks']} 次检查, {f['disinfection_not_done']} 次不到位",
            f"快检: {f['rapid_tests']} 批次, {f['rapid_tests_failed']} 批次不合格",
            "",
            "存在问题:",
            "",
            "下月措施:",
        ]
    )


class MonthlyReportIn(BaseModel):
    """Which month to generate (or regenerate while a draft)."""

    model_config = ConfigDict(extra="forbid")

    month: str = Field(pattern=MONTH_PATTERN, description="YYYY-MM (the region's local time).")


class MonthlyReportEditIn(BaseModel):
    """The edited text of a draft report."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=20000)


class MonthlyReportPublic(BaseModel):
    """A monthly dispatch report: its figures, text and whether the director signed it."""

    id: int
    site_id: str
    month: date
    figures: dict[str, Any]
    body: str
    generated_at: datetime
    edited_by: str | None
    edited_at: datetime | None
    signed_by: str | None
    signed_at: datetime | None


_REPORT_SELECT = """SELECT id, site_id, month, figures, body, generated_at, edited_by,
       edited_at, signed_by, signed_at FROM monthly_reports"""


def generate_report(
    conn: Conn, *, site_id: str, month: str, scope: SiteScope, now: datetime
) -> MonthlyReportPublic:
    """Generate the month's report, or refresh a draft's figures (an edited text is kept).

    409 when the month's report is signed; 422 when the month has not begun.
    """
    require_site(conn, scope, site_id)
    first = month_start(month)
    if first > local_date(now):
        raise DutyError("month: the month has not begun")
    figures = period_figures(conn, site_id=site_id, first=first, days=_days_in(first))
    with conn.transaction():
        signed = conn.execute(
            "SELECT signed_at FROM monthly_reports WHERE site_id = %s AND month = %s FOR UPDATE",
            (site_id, first),
        ).fetchone()
        if signed is not None and signed[0] is not None:
            raise DutyConflictError(f"month: the report of {month} is signed and final")
        conn.execute(
            """INSERT INTO monthly_reports (site_id, month, figures, body, generated_at)
               VALUES (%(site)s, %(month)s, %(figures)s, %(body)s, %(now)s)
               ON CONFLICT (site_id, month) DO UPDATE SET figures = EXCLUDED.figures,
                   generated_at = EXCLUDED.generated_at,
                   body = CASE WHEN monthly_reports.edited_by IS NULL THEN EXCLUDED.body
                               ELSE monthly_reports.body END""",
            {
                "site": site_id,
                "month": first,
                "figures": Jsonb(figures),
                "body": draft_text(figures),
                "now": now,
            },
        )
    found = _report(conn, site_id, first)
    assert found is not None
    return found


def _report(conn: Conn, site_id: str, first: date) -> MonthlyReportPublic | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"{_REPORT_SELECT} WHERE site_id = %s AND month = %s", (site_id, first)
        ).fetchone()
    return None if row is None else MonthlyReportPublic.model_validate(row)


def _draft_for_change(conn: Conn, site_id: str, month: str, scope: SiteScope) -> date:
    """The month of an existing, unsigned report (locked), else 404 / 409."""
    require_site(conn, scope, site_id)
    first = month_start(month)
    row = conn.execute(
        "SELECT signed_at FROM monthly_reports WHERE site_id = %s AND month = %s FOR UPDATE",
        (site_id, first),
    ).fetchone()
    if row is None:
        raise DutyNotFoundError(f"month: no report of {month} for site {site_id}; generate it")
    if row[0] is not None:
        raise DutyConflictError(f"month: the report of {month} is signed and final")
    return first


def edit_report(
    conn: Conn, *, site_id: str, month: str, body: str, scope: SiteScope, actor: str, now: datetime
) -> MonthlyReportPublic:
    """Replace a draft's text."""
    with conn.transaction():
        first = _draft_for_change(conn, site_id, month, scope)
        conn.execute(
            "UPDATE monthly_reports SET body = %s, edited_by = %s, edited_at = %s "
            "WHERE site_id = %s AND month = %s",
            (body, actor, now, site_id, first),
        )
    found = _report(conn, site_id, first)
    assert found is not None
    return found


def sign_report(
    conn: Conn, *, site_id: str, month: str, scope: SiteScope, actor: str, now: datetime
) -> MonthlyReportPublic:
    """The director signs the draft; from then on it is final."""
    with conn.transaction():
        first = _draft_for_change(conn, site_id, month, scope)
        conn.execute(
            "UPDATE monthly_reports SET signed_by = %s, signed_at = %s "
            "WHERE site_id = %s AND month = %s",
            (actor, now, site_id, first),
        )
    found = _report(conn, site_id, first)
    assert found is not None
    return found


def list_reports(
    conn: Conn, *, site_id: str, scope: SiteScope, limit: int
) -> list[MonthlyReportPublic]:
    """The site's monthly reports, newest month first."""
    require_site(conn, scope, site_id)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"{_REPORT_SELECT} WHERE site_id = %s ORDER BY month DESC LIMIT %s", (site_id, limit)
        ).fetchall()
    return [MonthlyReportPublic.model_validate(r) for r in rows]
