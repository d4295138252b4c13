"""Working-day deadlines (工作日) against a real PostgreSQL: weekends and the calendar's
holidays are skipped, adjusted working weekends (调休) count, the deadline is local midnight
after the last day, and a deadline override in working days reaches the tickets it opens."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services.deadlines import WorkingDays, resolve_deadline, set_deadline_rule
from api.services.tickets import process_findings
from api.services.workdays import CalendarDay, set_calendar_days, working_days_after
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from tests.api.conftest import insert_finding

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 2026 National Day as a test calendar: 1-7 October off, Sunday 27 September and Saturday
# 10 October worked
NATIONAL_DAY = [
    CalendarDay(day=date(2026, 9, 27), working=True, note="国庆节调休上班"),
    *(CalendarDay(day=date(2026, 10, d), working=False, note="国庆节") for d in range(1, 8)),
    CalendarDay(day=date(2026, 10, 10), working=True, note="国庆节调休上班"),
]


def _local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def test_weekends_do_not_count_and_the_deadline_is_local_midnight(
    conn: psycopg.Connection[Any],
) -> None:
    friday_evening = _local(2026, 3, 6, 18, 30).astimezone(UTC)  # a Friday
    # Monday 9 March is the first working day after it; the fifth ends on Friday 13 March
    assert working_days_after(conn, friday_evening, 1) == _local(2026, 3, 10)
    assert working_days_after(conn, friday_evening, 5) == _local(2026, 3, 14)
    assert working_days_after(conn, friday_evening, 10) == _local(2026, 3, 21)
    # 23:30 UTC on Friday is already Saturday in China: the count starts from Saturday
    assert working_days_after(conn, datetime(2026, 3, 6, 23, 30, tzinfo=UTC), 1) == _local(
        2026, 3, 10
    )
    for bad in (0, -1, 61):
        with pytest.raises(ValueError, match="working days must be"):
            working_days_after(conn, friday_evening, bad)


def test_holidays_are_skipped_and_adjusted_weekends_count(conn: psycopg.Connection[Any]) -> None:
    # 3 and 4 October are a weekend anyway: only the 7 real exceptions are stored
    assert set_calendar_days(conn, NATIONAL_DAY) == 7
    friday = _local(2026, 9, 25, 9)
    # 27-30 September, 8, 9, 10, 12, 13, 14 October
    assert working_days_after(conn, friday, 10) == _local(2026, 10, 15)
    assert working_days_after(conn, friday, 4) == _local(2026, 10, 1)
    assert working_days_after(conn, friday, 5) == _local(2026, 10, 9)
    # a day given back as its plain kind drops its exception (the table holds exceptions only)
    set_calendar_days(conn, [CalendarDay(day=date(2026, 10, 10), working=False)])
    rows = conn.execute("SELECT day FROM calendar_days ORDER BY day").fetchall()
    assert date(2026, 10, 10) not in [r[0] for r in rows]
    assert working_days_after(conn, friday, 10) == _local(2026, 10, 16)


@pytest.mark.usefixtures("registry")
def test_a_working_day_override_sets_the_tickets_deadline(
    conn: psycopg.Connection[Any], settings: ApiSettings, admin_headers: dict[str, str], db_url: str
) -> None:
    set_calendar_days(conn, NATIONAL_DAY)
    set_deadline_rule(conn, working_days=10, rule="no_mask", region_id="d1")
    assert resolve_deadline(
        conn, site_id="school-001", rule="no_mask", tier=2, settings=settings
    ) == WorkingDays(10)
    opened = _local(2026, 9, 25, 9).astimezone(UTC)
    insert_finding(conn, key="v-1", kind="violation", subject="cam-1", rule="no_mask",
                   occurred_at=opened, notify=False)  # fmt: skip
    process_findings(conn, now=opened, settings=settings)
    (due,) = conn.execute("SELECT due_at FROM tickets WHERE rule = 'no_mask'").fetchone() or (0,)
    assert due == _local(2026, 10, 15)
    with pytest.raises(ValueError, match="one of them"):
        set_deadline_rule(conn, hours=4, working_days=2, rule="pest")

    app = create_app(settings, common=CommonSettings(database_url=db_url))
    with TestClient(app, headers=admin_headers) as client:
        url = "/api/v1/settings/deadlines"
        r = client.put(url, json={"region_id": "d1", "rule": "pest", "working_days": 3})
        assert r.status_code == 200, r.text
        pest = next(x for x in r.json()["rules"] if x["rule"] == "pest")
        assert (pest["hours"], pest["working_days"]) == (None, 3)
        for bad in (
            {"rule": "pest", "working_days": 0},
            {"rule": "pest", "working_days": 61},
            {"rule": "pest", "working_days": 2.5},
            {"rule": "pest", "working_days": True},
            {"rule": "pest", "hours": 4, "working_days": 2},
            {"rule": "pest"},
        ):
            assert client.put(url, json=bad).status_code == 422, bad
        # the calendar, read and written over HTTP
        cal = client.get("/api/v1/settings/calendar", params={"start": "2026-09-01",
                                                               "end": "2026-10-31"})  # fmt: skip
        assert cal.status_code == 200, cal.text
        assert [d["day"] for d in cal.json()["days"]][:2] == ["2026-09-27", "2026-10-01"]
        r = client.put(
            "/api/v1/settings/calendar",
            json={"days": [{"day": "2027-01-01", "working": False, "note": "元旦"}]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["days"] == [{"day": "2027-01-01", "working": False, "note": "元旦"}]
        for bad_cal in (
            {"days": []},
            {"days": [{"day": "2027-01-01", "working": "no"}]},
            {"days": [{"day": 20270101, "working": False}]},
            {"days": [{"day": "2027-01-01", "working": False, "note": "x" * 201}]},
            {"days": [{"day": "9999-12-31", "working": False}]},  # no overflow, no 500
            {"days": [{"day": "1999-12-31", "working": False}]},
        ):
            assert client.put("/api/v1/settings/calendar", json=bad_cal).status_code == 422
        span = client.get("/api/v1/settings/calendar", params={"start": "2026-01-01",
                                                                "end": "2030-01-01"})  # fmt: skip
        assert span.status_code == 422
        for far in ({"start": "9999-12-31"}, {"start": "2026-01-01", "end": "9999-12-31"}):
            r = client.get("/api/v1/settings/calendar", params=far)
            assert r.status_code == 422, r.text
