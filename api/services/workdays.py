"""Working days (工作日) on the region's calendar, for deadlines such as "10 working days".

Monday to Friday are working days and Saturday and Sunday are not, except where the
``calendar_days`` table says otherwise: the public holidays that fall on weekdays and the
adjusted working weekends (调休) that the State Council announces each year. An
administrator enters them once a year (``PUT /settings/calendar``); without them a deadline
counts weekends only, which is wrong by a few days around the long holidays and never by more.

A deadline of N working days ends at midnight (local) after the Nth working day following the
day the ticket opened: the opening day does not count, as a notice dated today that allows
ten working days means ten full days from tomorrow.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import psycopg
from pydantic import BaseModel, ConfigDict, Field

from api.input_types import IsoDate
from bkcommon.localtime import region_zone

Conn = psycopg.Connection[Any]

MAX_WORKING_DAYS = 60
_WEEKEND = frozenset({5, 6})  # Saturday, Sunday


class CalendarDay(BaseModel):
    """An exception to Monday-to-Friday: a holiday on a weekday or a working weekend day."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    day: IsoDate = Field(description="A day of 2000-2099.")
    working: bool = Field(strict=True)
    note: str = Field(default="", max_length=200, description="e.g. 国庆节, 国庆调休上班")


def _exceptions(conn: Conn, after: date, until: date) -> dict[date, bool]:
    rows = conn.execute(
        "SELECT day, working FROM calendar_days WHERE day > %s AND day <= %s", (after, until)
    ).fetchall()
    return {r[0]: bool(r[1]) for r in rows}


def is_working(day: date, exceptions: dict[date, bool]) -> bool:
    """Whether ``day`` is a working day, given the calendar's exceptions."""
    return exceptions.get(day, day.weekday() not in _WEEKEND)


def working_days_after(conn: Conn, start: datetime, n: int) -> datetime:
    """The end of the ``n``-th working day after ``start``'s local date (midnight, local).

    Example: opened on Friday 2026-09-25 with 1-7 October off and Sunday 27 September and
    Saturday 10 October worked, 10 working days are 27-30 September and 8, 9, 10, 12, 13,
    14 October, and end at 2026-10-15 00:00 local.
    """
    if not 1 <= n <= MAX_WORKING_DAYS:
        raise ValueError(f"working days must be 1-{MAX_WORKING_DAYS}, not {n}")
    zone = region_zone()
    day = start.astimezone(zone).date()
    # a run of n working days never spans more than 3n + 40 calendar days (the longest
    # holiday is 9 days, and there are two of them a year)
    exceptions = _exceptions(conn, day, day + timedelta(days=3 * n + 40))
    counted = 0
    while counted < n:
        day += timedelta(days=1)
        if is_working(day, exceptions):
            counted += 1
    return datetime.combine(day + timedelta(days=1), time(0), zone)


def set_calendar_days(conn: Conn, days: list[CalendarDay]) -> int:
    """Create or replace calendar exceptions; a day given as its plain weekday kind (a working
    Tuesday, a Sunday off) is removed instead, so the table holds exceptions only."""
    changed = 0
    for d in days:
        plain = d.working == (d.day.weekday() not in _WEEKEND)
        if plain:
            cur = conn.execute("DELETE FROM calendar_days WHERE day = %s", (d.day,))
        else:
            cur = conn.execute(
                """INSERT INTO calendar_days (day, working, note) VALUES (%s, %s, %s)
                   ON CONFLICT (day) DO UPDATE SET working = excluded.working,
                                                   note = excluded.note""",
                (d.day, d.working, d.note),
            )
        changed += cur.rowcount
    return changed


def list_calendar_days(conn: Conn, start: date, end: date) -> list[CalendarDay]:
    """The exceptions from ``start`` to ``end`` (both included), in date order."""
    rows = conn.execute(
        "SELECT day, working, note FROM calendar_days WHERE day BETWEEN %s AND %s ORDER BY day",
        (start, end),
    ).fetchall()
    return [CalendarDay(day=r[0], working=bool(r[1]), note=str(r[2])) for r in rows]
