"""A meal served without food samples on record becomes a ticket (real PostgreSQL).

The meals come from the site's meal schedule (local times, weekdays, days off), the
samples from the officer's 留样 record; a meal is due its samples by its end plus the grace.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from api.services.duty_deadlines import LOG_EACH_MAX, DutySettings
from api.services.sample_deadlines import check_sample_deadlines
from api.services.tickets import process_findings
from api.settings import ApiSettings
from tests.api.authz_world import World

API = "/api/v1"
SHANGHAI = ZoneInfo("Asia/Shanghai")
EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]
SERVICES = [
    {"meal": "lunch", "start": "11:00", "end": "12:30", "weekdays": EVERY_DAY},
    {"meal": "dinner", "start": "17:00", "end": "18:30", "weekdays": EVERY_DAY},
]
DAY1, DAY2 = date(2026, 12, 1), date(2026, 12, 2)
NOW = datetime(2026, 12, 2, 14, 0, tzinfo=SHANGHAI)  # day 2, after lunch, before dinner


def _keep_duties(c: TestClient, w: World, site: str, since: date) -> None:
    r = c.put(
        f"{API}/sites/{site}/duties",
        json={"business_type": "school_canteen", "since": str(since)},
        headers=w.headers("admin"),
    )
    assert r.status_code == 200, r.text


def _schedule(conn: psycopg.Connection[Any], site: str, days_off: list[Any] | None = None) -> None:
    conn.execute(
        "INSERT INTO meal_schedules (site_id, timezone, window_s, services, days_off) "
        "VALUES (%s, 'Asia/Shanghai', 3600, %s, %s)",
        (site, Jsonb(SERVICES), Jsonb(days_off or [])),
    )


def _sample(c: TestClient, w: World, site: str, day: date, meal: str) -> None:
    noon = datetime(day.year, day.month, day.day, 12, 0, tzinfo=SHANGHAI)
    r = c.post(
        f"{API}/sites/{site}/food-samples",
        json={
            "meal_date": str(day),
            "meal": meal,
            "stored_at": min(noon, datetime.now(SHANGHAI)).isoformat(),
            "dishes": [{"dish": "番茄炒蛋", "weight_g": 150}],
        },
        headers=w.headers("officer"),
    )
    assert r.status_code == 201, r.text


def _findings(conn: psycopg.Connection[Any]) -> list[tuple[str, datetime]]:
    return [
        (str(k), t)
        for k, t in conn.execute(
            "SELECT finding_key, occurred_at FROM findings "
            "WHERE rule = 'food_sample_missed' ORDER BY finding_key"
        ).fetchall()
    ]


def test_meals_without_samples_become_one_ticket_for_the_officer(
    client: TestClient, world: World, conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    _keep_duties(client, world, "site-a1", DAY1)
    _schedule(conn, "site-a1")
    _sample(client, world, "site-a1", DAY1, "lunch")
    duty = DutySettings()
    # day 1 lunch sampled; day 1 dinner and day 2 lunch not; day 2 dinner not served yet
    assert check_sample_deadlines(conn, now=NOW, settings=duty) == 2
    assert check_sample_deadlines(conn, now=NOW, settings=duty) == 0  # idempotent
    found = _findings(conn)
    assert [k for k, _ in found] == [
        f"food_sample_missed:site-a1:{DAY1}:dinner",
        f"food_sample_missed:site-a1:{DAY2}:lunch",
    ]
    # due at the meal's end plus the grace (60 min), in the schedule's own time zone
    assert [t.astimezone(SHANGHAI).strftime("%d %H:%M") for _, t in found] == [
        "01 19:30",
        "02 13:30",
    ]
    process_findings(conn, now=NOW, settings=settings)
    tickets = conn.execute(
        "SELECT title, tier, subject FROM tickets WHERE rule = 'food_sample_missed'"
    ).fetchall()
    assert len(tickets) == 1, tickets  # the second meal is an occurrence of the open ticket
    title, tier, subject = tickets[0]
    assert title.startswith("未按规定留样"), title
    assert (tier, subject) == (2, "food_sample")
    # the month's report counts them
    r = client.post(
        f"{API}/sites/site-a1/monthly-reports",
        json={"month": "2026-12"},
        headers=world.headers("officer"),
    )
    assert r.status_code == 200, r.text
    figures = r.json()["figures"]
    assert (figures["meals_sampled"], figures["meals_unsampled"]) == (1, 2)
    assert "2 餐次未按规定留样" in r.json()["body"]


def test_a_meal_is_not_due_before_its_grace_has_passed(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    _keep_duties(client, world, "site-a1", DAY2)
    _schedule(conn, "site-a1")
    at_13 = datetime(2026, 12, 2, 13, 0, tzinfo=SHANGHAI)
    assert check_sample_deadlines(conn, now=at_13, settings=DutySettings()) == 0
    late = DutySettings(sample_grace_min=20)
    assert check_sample_deadlines(conn, now=at_13, settings=late) == 1


def test_days_off_days_before_the_duties_and_sites_without_a_schedule_are_not_checked(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    _keep_duties(client, world, "site-a1", DAY2)  # day 1 is before the site kept duties
    _schedule(conn, "site-a1", days_off=[{"from": str(DAY2), "to": str(DAY2), "reason": "假期"}])
    _keep_duties(client, world, "site-a2", DAY1)  # keeps duties but serves no scheduled meal
    later = NOW + timedelta(days=1)  # day 3, 14:00: only day 3's lunch is due and missing
    assert check_sample_deadlines(conn, now=later, settings=DutySettings()) == 1
    assert [k for k, _ in _findings(conn)] == ["food_sample_missed:site-a1:2026-12-03:lunch"]


def test_the_officer_sees_the_days_meals_and_which_still_need_samples(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    _keep_duties(client, world, "site-a1", DAY1)
    _schedule(conn, "site-a1")
    _sample(client, world, "site-a1", DAY2, "lunch")
    r = client.get(
        f"{API}/sites/site-a1/meals", params={"day": str(DAY2)}, headers=world.headers("officer")
    )
    assert r.status_code == 200, r.text
    meals = r.json()
    assert [(m["meal"], m["sampled"], m["dishes_sampled"], m["overdue"]) for m in meals] == [
        ("lunch", True, 1, False),
        ("dinner", False, 0, True),  # day 2 is in the past: its dinner is overdue
    ]
    due = datetime.fromisoformat(meals[1]["samples_due_at"]).astimezone(SHANGHAI)
    assert due.strftime("%Y-%m-%d %H:%M") == "2026-12-02 19:30"
    # a site without a meal schedule has no meals to sample; another site is not the officer's
    r = client.get(f"{API}/sites/site-a2/meals", headers=world.headers("regulator"))
    assert (r.status_code, r.json()) == (200, [])
    r = client.get(f"{API}/sites/site-a2/meals", headers=world.headers("officer"))
    assert r.status_code == 404


def test_the_regulators_list_of_today_counts_each_sites_meals_and_samples(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    today = datetime.now(SHANGHAI).date()
    early = [
        {"meal": m, "start": t, "end": e, "weekdays": EVERY_DAY}
        for m, t, e in (("breakfast", "00:00", "00:01"), ("lunch", "00:02", "00:03"))
    ]
    for site in ("site-a1", "site-a2", "site-a3"):
        _keep_duties(client, world, site, today)
    for site in ("site-a1", "site-a2"):
        conn.execute(
            "INSERT INTO meal_schedules (site_id, timezone, window_s, services) "
            "VALUES (%s, 'Asia/Shanghai', 3600, %s)",
            (site, Jsonb(early)),
        )
    _sample(client, world, "site-a1", today, "breakfast")
    _sample(client, world, "site-a1", today, "lunch")
    r = client.get(f"{API}/duties/today", headers=world.headers("regulator"))
    assert r.status_code == 200, r.text
    rows = {row["site_id"]: row for row in r.json()}
    counts = {s: (rows[s]["meals_scheduled"], rows[s]["meals_sampled"]) for s in sorted(rows)}
    assert counts == {"site-a1": (2, 2), "site-a2": (2, 0), "site-a3": (0, 0)}
    assert rows["site-a1"]["meals_overdue"] == 0
    # site-a2's meals are overdue an hour past their end (01:01 and 01:03, China time)
    clock = datetime.now(SHANGHAI).time()
    assert rows["site-a2"]["meals_overdue"] == (clock >= time(1, 1)) + (clock >= time(1, 3))


def test_a_late_meal_whose_samples_fall_due_after_midnight_counts_from_that_day(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    _keep_duties(client, world, "site-a1", DAY2)  # deadlines from day 2, 00:00 are enforced
    conn.execute(
        "INSERT INTO meal_schedules (site_id, timezone, window_s, services) "
        "VALUES ('site-a1', 'Asia/Shanghai', 3600, %s)",
        (Jsonb([{"meal": "dinner", "start": "22:30", "end": "23:30", "weekdays": EVERY_DAY}]),),
    )
    at_1 = datetime(2026, 12, 2, 1, 0, tzinfo=SHANGHAI)
    # day 1's dinner: served before day 2, its samples due at 00:30 on day 2
    assert check_sample_deadlines(conn, now=at_1, settings=DutySettings()) == 1
    assert [k for k, _ in _findings(conn)] == [f"food_sample_missed:site-a1:{DAY1}:dinner"]


def test_a_sweep_with_many_misses_logs_the_first_ones_and_a_count(
    client: TestClient,
    world: World,
    conn: psycopg.Connection[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _keep_duties(client, world, "site-a1", DAY1 - timedelta(days=20))
    _schedule(conn, "site-a1")  # lunch and dinner every day, nothing sampled
    with caplog.at_level(logging.WARNING, logger="api.services.sample_deadlines"):
        n = check_sample_deadlines(conn, now=NOW, settings=DutySettings(lookback_days=14))
    assert n == 2 * 15 - 1  # 14 days back to day 2's lunch; day 2's dinner is not due yet
    lines = [r.getMessage() for r in caplog.records if r.name == "api.services.sample_deadlines"]
    assert len(lines) == LOG_EACH_MAX + 1
    assert lines[-1] == f"{n - LOG_EACH_MAX} more meals without food samples (findings recorded)"
    assert len(_findings(conn)) == n  # every one is recorded, logged or not


def test_the_views_call_a_meal_overdue_exactly_when_the_check_records_it(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    # site-a1 keeps duties from day 2: day 1's dinner (due day 1 19:30) is before that and is
    # no miss; site-a2 has a schedule but keeps no duties at all, so nothing is enforced there
    _keep_duties(client, world, "site-a1", DAY2)
    _schedule(conn, "site-a1")
    _schedule(conn, "site-a2")
    at_day3 = NOW + timedelta(days=1)
    check_sample_deadlines(conn, now=at_day3, settings=DutySettings())
    recorded = {k for k, _ in _findings(conn)}
    for site, day in (("site-a1", DAY1), ("site-a1", DAY2), ("site-a2", DAY1)):
        r = client.get(
            f"{API}/sites/{site}/meals", params={"day": str(day)}, headers=world.headers("admin")
        )
        assert r.status_code == 200, r.text
        shown = {f"food_sample_missed:{site}:{day}:{m['meal']}" for m in r.json() if m["overdue"]}
        assert shown == {k for k in recorded if k.startswith(f"food_sample_missed:{site}:{day}:")}
    assert recorded == {
        f"food_sample_missed:site-a1:{DAY2}:lunch",
        f"food_sample_missed:site-a1:{DAY2}:dinner",
        "food_sample_missed:site-a1:2026-12-03:lunch",
    }


def test_today_is_the_schedules_own_day_and_each_meal_says_its_date(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    # a schedule kept in a zone 20 hours behind China's: its today is often China's yesterday
    zone = ZoneInfo("Etc/GMT+12")
    _keep_duties(client, world, "site-a1", DAY1)
    conn.execute(
        "INSERT INTO meal_schedules (site_id, timezone, window_s, services) "
        "VALUES ('site-a1', 'Etc/GMT+12', 3600, %s)",
        (Jsonb([{"meal": "lunch", "start": "00:00", "end": "00:01", "weekdays": EVERY_DAY}]),),
    )
    theirs = datetime.now(zone).date()
    r = client.get(f"{API}/sites/site-a1/meals", headers=world.headers("officer"))
    assert r.status_code == 200, r.text
    assert [m["meal_date"] for m in r.json()] == [str(theirs)]
    # a sample recorded under that date counts on the officer's page and the regulator's list
    _sample(client, world, "site-a1", theirs, "lunch")
    r = client.get(f"{API}/sites/site-a1/meals", headers=world.headers("officer"))
    assert [(m["sampled"], m["overdue"]) for m in r.json()] == [(True, False)]
    rows = client.get(f"{API}/duties/today", headers=world.headers("regulator")).json()
    row = next(x for x in rows if x["site_id"] == "site-a1")
    assert (row["meals_scheduled"], row["meals_sampled"]) == (1, 1)
