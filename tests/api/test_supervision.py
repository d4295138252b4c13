"""包保 supervision over HTTP, on real PostgreSQL: visits, findings → tickets, coverage.

A cadre's checklist "no" becomes a ticket through the ticket engine; each role sees and
writes only its own sites (a regulator its region, an officer its canteen); bad input is
refused naming the field; the coverage figures equal what the database holds, in JSON,
CSV and XLSX alike.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from psycopg.types.json import Jsonb

from api.app import create_app
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.timeutil import utcnow
from tests.api.authz_world import World, build_world
from tests.api.conftest import make_user_token

ON = date(2026, 3, 31)
AT = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)  # 10:00 in Asia/Shanghai


@pytest.fixture
def world(conn: psycopg.Connection[Any]) -> World:
    w = build_world(conn)
    # the world's cadre of site-a1, who signs in as a regulator of dist-a
    conn.execute("INSERT INTO people (id, name) VALUES ('p-cadre-a', 'Cadre Wang')")
    conn.execute(
        "INSERT INTO site_people (site_id, person_id, role) VALUES ('site-a1', 'p-cadre-a', "
        "'regulator')"
    )
    w.tokens["cadre"] = make_user_token(
        conn, username="cadre-a", role="regulator", region_id="dist-a", person_id="p-cadre-a"
    )
    return w


@pytest.fixture
def client(db_url: str, settings: ApiSettings) -> Iterator[TestClient]:
    app = create_app(settings, common=CommonSettings(database_url=db_url))
    with TestClient(app) as c:
        yield c


def _visit(site: str, at: datetime = AT, **extra: Any) -> dict[str, Any]:
    return {
        "site_id": site,
        "visited_at": at.isoformat(),
        "checklist": [
            {"item": "晨检记录完整", "ok": True},
            {"item": "留样 ≥125 g 48 h", "ok": False, "note": "午餐留样缺青菜"},
        ],
        "note": "季度督导",
    } | extra


def test_a_visit_finding_becomes_a_ticket_once(
    client: TestClient, world: World, conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    c, w = client, world
    r = c.post("/api/v1/supervision/visits", json=_visit("site-a1"), headers=w.headers("cadre"))
    assert r.status_code == 201, r.text
    visit = r.json()
    assert visit["person_id"] == "p-cadre-a"
    assert visit["findings"] == 1
    again = c.post("/api/v1/supervision/visits", json=_visit("site-a1"), headers=w.headers("cadre"))
    assert again.status_code == 200
    assert again.json()["id"] == visit["id"]

    assert process_findings(conn, now=utcnow(), settings=settings) >= 1
    seen = c.get("/api/v1/supervision/visits", headers=w.headers("officer")).json()
    assert [v["id"] for v in seen] == [visit["id"]]  # the officer sees their canteen's visit
    (ticket_id,) = seen[0]["ticket_ids"]
    (ticket_no,) = seen[0]["ticket_nos"]  # what the console shows: the number, not the id
    assert ticket_no.startswith("ZG-")
    assert ticket_no.endswith(f"-{ticket_id}")
    ticket = c.get(f"/api/v1/tickets/{ticket_id}", headers=w.headers("officer")).json()
    assert ticket["site_id"] == "site-a1"
    assert ticket["rule"] == "supervision_finding"
    assert ticket["title"] == "包保督导发现问题 supervision visit finding: 留样 ≥125 g 48 h"
    template = c.get("/api/v1/supervision/checklist", headers=w.headers("cadre")).json()
    assert template["source"].startswith("企业落实食品安全主体责任监督管理规定")
    assert "SAMR Order No. 60" in template["source_en"]  # the English console's words
    assert not any(c.isascii() and c.isalpha() for c in template["source"])  # Chinese only
    assert [i["key"] for i in template["items"]][:3] == ["staffed", "risk_list", "daily"]
    rows = conn.execute(
        "SELECT count(*) FROM findings WHERE finding_key LIKE %s", (f"supervision:{visit['id']}:%",)
    ).fetchone()
    assert rows == (1,)  # the retry added no finding


def test_each_role_sees_and_writes_only_its_sites(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    c, w = client, world
    for role in ("officer", "director", "insurer", "device"):
        r = c.post("/api/v1/supervision/visits", json=_visit("site-a1"), headers=w.headers(role))
        assert r.status_code == 403, (role, r.text)
        assert c.get("/api/v1/supervision/coverage", headers=w.headers(role)).status_code == 403
    outside = c.post(
        "/api/v1/supervision/visits", json=_visit("site-b1"), headers=w.headers("cadre")
    )
    assert outside.status_code == 404
    assert outside.json()["detail"].startswith("site_id:")
    for site in ("site-a2", "site-b1"):
        r = c.post("/api/v1/supervision/visits", json=_visit(site), headers=w.headers("admin"))
        assert r.status_code == 201, r.text
    assert {
        v["site_id"]
        for v in c.get("/api/v1/supervision/visits", headers=w.headers("regulator")).json()
    } == {"site-a2"}
    assert c.get("/api/v1/supervision/visits", headers=w.headers("officer")).json() == []
    asked = c.get(
        "/api/v1/supervision/visits", params={"site_id": "site-b1"}, headers=w.headers("officer")
    )
    assert asked.json() == []  # a filter opens no door
    cov = c.get("/api/v1/supervision/coverage", headers=w.headers("regulator")).json()
    assert [s["site_id"] for s in cov["sites"]] == ["site-a1", "site-a2", "site-a3"]
    other_region = c.put(
        "/api/v1/supervision/frequency",
        json={"region_id": "dist-b", "period_days": 30},
        headers=w.headers("regulator"),
    )
    assert other_region.status_code == 404
    assert other_region.json()["detail"].startswith("region_id:")
    assert c.put(
        "/api/v1/supervision/frequency",
        json={"region_id": "dist-a", "period_days": 30},
        headers=w.headers("officer"),
    ).status_code == 403  # fmt: skip
    assert conn.execute("SELECT count(*) FROM supervision_frequency").fetchone() == (0,)


def test_bad_input_is_refused_naming_the_field(client: TestClient, world: World) -> None:
    c, h = client, world.headers("cadre")
    cases = {
        "visited_at": _visit("site-a1", visited_at="2026-03-20T10:00:00"),
        "note": _visit("site-a1", checklist=[{"item": "留样", "ok": False}]),
        "checklist": _visit("site-a1", checklist=[]),
        "site_id": _visit("site-a1", site_id=""),
    }
    for name, body in cases.items():
        r = c.post("/api/v1/supervision/visits", json=body, headers=h)
        assert r.status_code == 422, (name, r.text)
        assert name in r.json()["detail"], (name, r.text)
    ahead = c.post(
        "/api/v1/supervision/visits",
        json=_visit("site-a1", at=utcnow() + timedelta(hours=2)),
        headers=h,
    )
    assert ahead.status_code == 422
    assert ahead.json()["detail"].startswith("visited_at:")
    twice = _visit("site-a1", checklist=[{"item": "x", "ok": True}, {"item": "x", "ok": True}])
    r = c.post("/api/v1/supervision/visits", json=twice, headers=h)
    assert r.status_code == 422
    assert "checklist: each item may be answered once" in r.json()["detail"]
    r = c.put(
        "/api/v1/supervision/frequency",
        json={"region_id": "dist-a", "period_days": 0},
        headers=h,
    )
    assert r.status_code == 422
    assert "body.period_days" in r.json()["detail"]


def test_coverage_equals_the_database_in_json_csv_and_xlsx(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    c, w = client, world
    admin = w.headers("admin")
    # dist-a (and its town) visited monthly; dist-b keeps the default of 90 days
    r = c.put(
        "/api/v1/supervision/frequency",
        json={"region_id": "dist-a", "period_days": 30, "visits": 2, "source": "区〔2026〕1号"},
        headers=w.headers("regulator"),
    )
    assert r.status_code == 200, r.text
    visits = [
        ("site-a1", ON - timedelta(days=3)),
        ("site-a1", ON - timedelta(days=10)),
        ("site-a1", ON - timedelta(days=11)),  # a third one: counts once more, capped
        ("site-a2", ON - timedelta(days=40)),  # before dist-a's 30-day period
        ("site-b1", ON - timedelta(days=80)),  # inside the default 90 days
        ("site-a3", ON + timedelta(days=1)),  # after the day asked for
    ]
    for site, day in visits:
        at = datetime(day.year, day.month, day.day, 3, tzinfo=UTC)
        ok = c.post("/api/v1/supervision/visits", json=_visit(site, at=at), headers=admin)
        assert ok.status_code == 201, ok.text

    # daily duties: a1 and a2 keep them by ON, b1 only from the day after; a1 and b1 checked
    conn.execute(
        """INSERT INTO duty_sites (site_id, business_type, since) VALUES
           ('site-a1', 'school', %(before)s), ('site-a2', 'school', %(before)s),
           ('site-b1', 'school', %(after)s)""",
        {"before": ON - timedelta(days=7), "after": ON + timedelta(days=1)},
    )
    for site in ("site-a1", "site-b1"):
        conn.execute(
            """INSERT INTO daily_checks (site_id, check_date, business_type, template_source,
                   completed_by, completed_at) VALUES (%s, %s, 'school', 'test', 'off', now())""",
            (site, ON),
        )
    # a1 serves breakfast and lunch; only breakfast's samples are recorded (ON is past: both due)
    conn.execute(
        "INSERT INTO meal_schedules (site_id, timezone, window_s, services) "
        "VALUES ('site-a1', 'Asia/Shanghai', 3600, %s)",
        (Jsonb([{"meal": m, "start": a, "end": b, "weekdays": [1, 2, 3, 4, 5, 6, 7]}
                for m, a, b in (("breakfast", "07:00", "08:00"), ("lunch", "11:00", "12:00"))]),),
    )  # fmt: skip
    conn.execute(
        """INSERT INTO food_samples (site_id, meal_date, meal, dish, weight_g, stored_at,
               keep_until, recorded_by)
           VALUES ('site-a1', %(on)s, 'breakfast', '粥', 150, %(at)s,
                   %(at)s + interval '48 hours', 'off')""",
        {"on": ON, "at": datetime(ON.year, ON.month, ON.day, 0, 30, tzinfo=UTC)},
    )
    cov = c.get("/api/v1/supervision/coverage", params={"on": str(ON)}, headers=admin).json()
    by_site = {s["site_id"]: s for s in cov["sites"]}
    meals = {
        k: (v["meals_scheduled"], v["meals_sampled"], v["meals_overdue"])
        for k, v in by_site.items()
    }
    assert meals == {
        "site-a1": (2, 1, 1),
        "site-a2": (0, 0, 0),
        "site-a3": (0, 0, 0),
        "site-b1": (0, 0, 0),
    }
    assert {
        k: (v["period_days"], v["visits_due"], v["visits_done"]) for k, v in by_site.items()
    } == {
        "site-a1": (30, 2, 3),
        "site-a2": (30, 2, 0),
        "site-a3": (30, 2, 0),
        "site-b1": (90, 1, 1),
    }
    assert by_site["site-a3"]["frequency_region"] == "dist-a"  # inherited from its district
    assert by_site["site-b1"]["frequency_region"] is None
    assert by_site["site-a1"]["cadres"] == ["Cadre Wang"]
    assert by_site["site-a1"]["fully_assigned"] is True

    people = dict(
        conn.execute(
            """SELECT role, count(DISTINCT site_id) FROM site_people
               WHERE role IN ('director', 'officer', 'regulator') GROUP BY role"""
        ).fetchall()
    )
    full = conn.execute(
        """SELECT count(*) FROM sites s WHERE
           (SELECT count(DISTINCT role) FROM site_people sp WHERE sp.site_id = s.id
              AND role IN ('director', 'officer', 'regulator')) = 3"""
    ).fetchone()
    t = cov["totals"]
    assert t["sites"] == conn.execute("SELECT count(*) FROM sites").fetchone()[0]  # type: ignore[index]
    assert (t["with_director"], t["with_officer"], t["with_cadre"]) == (
        people["director"], people["officer"], people["regulator"],
    )  # fmt: skip
    assert (t["fully_assigned"],) == full
    assert (t["visits_due"], t["visits_done"], t["sites_on_schedule"]) == (2 * 3 + 1, 2 + 1, 2)
    due = conn.execute("SELECT count(*) FROM duty_sites WHERE since <= %s", (ON,)).fetchone()
    done = conn.execute(
        "SELECT count(DISTINCT site_id) FROM daily_checks WHERE check_date = %s", (ON,)
    ).fetchone()
    assert (t["daily_checks_due_today"],) == due
    assert (t["daily_checks_done_today"],) == done
    assert (by_site["site-a2"]["daily_check_due"], by_site["site-a2"]["daily_check_done"]) == (
        True, False,
    )  # fmt: skip

    csv_r = c.get("/api/v1/supervision/coverage.csv", params={"on": str(ON)}, headers=admin)
    assert csv_r.status_code == 200
    rows = list(csv.reader(io.StringIO(csv_r.text.removeprefix("\ufeff"))))
    assert rows[0][:3] == ["单位编号", "单位", "区域"]
    assert [(r[0], int(r[8]), int(r[9])) for r in rows[1:]] == [
        (s["site_id"], s["visits_due"], s["visits_done"]) for s in cov["sites"]
    ]
    assert rows[0][11] == "最近督导(当地时间)"  # the region's time, as a person reads it
    assert all(r[11] == "" or re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", r[11]) for r in rows[1:])
    assert {r[0]: (r[13], r[14]) for r in rows[1:]} == {
        "site-a1": ("1/2", "1"), "site-a2": ("", ""), "site-a3": ("", ""), "site-b1": ("", ""),
    }  # fmt: skip
    xlsx_r = c.get(
        "/api/v1/supervision/coverage.xlsx", params={"on": str(ON), "lang": "en"}, headers=admin
    )
    assert xlsx_r.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx_r.content)).active
    assert sheet is not None
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert cells[0][0] == "Site id"
    assert [(r[0], r[9]) for r in cells[1:]] == [
        (s["site_id"], s["visits_done"]) for s in cov["sites"]
    ]
