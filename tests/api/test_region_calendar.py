"""The region's calendar, whatever BK_TIME_ZONE is (an IANA zone with or without daylight saving):

- the rapid-test statistics' default month is the region's month, not UTC's;
- a failed sample flags the supplier's deliveries of the region's last N days whatever offset
  the test time was written with;
- the policy in force is found by the region's calendar day (``BK_TIME_ZONE``), not China's;
- the disinfection ledger's times are in the zone its day is counted in (the site's).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from tests.api.authz_world import World
from tests.api.conftest import HookServer, rapid_test_body, site_data


def _frozen_datetime(at: datetime) -> type[datetime]:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # type: ignore[override]
            return at if tz is None else at.astimezone(tz)

    return Frozen


def test_rapid_test_stats_default_to_the_regions_month_not_utcs(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2026-06-01 00:30 in Beijing is still 31 May in UTC
    import bkcommon.localtime as localtime

    now = datetime(2026, 5, 31, 16, 30, tzinfo=UTC)
    monkeypatch.setattr(localtime, "datetime", _frozen_datetime(now))
    h = world.headers("admin")
    r = client.post(
        "/api/v1/rapid-tests",
        json=rapid_test_body(
            "site-a1", tested_at="2026-06-01T00:10:00+08:00", result="pass", value=12.0
        ),
        headers=h,
    )
    assert r.status_code == 201, r.text
    stats = client.get("/api/v1/rapid-tests/stats", headers=h).json()
    assert "2026-06" in [m["month"] for m in stats]  # June's test, under June


@pytest.mark.parametrize("tested_at", ["2026-03-15T07:00:00+08:00", "2026-03-14T23:00:00Z"])
def test_supplier_flag_window_counts_the_regions_days_whatever_the_offset(
    client: TestClient, world: World, tested_at: str
) -> None:
    # the same instant, 15 March 07:00 in Beijing, written with two offsets: the window of
    # 14 days goes back to 1 March (local), so a delivery of 28 February is not flagged
    h = world.headers("admin")
    old = client.post(
        "/api/v1/purchases",
        json={
            "site_id": "site-a2",
            "supplier_name": "绿源蔬菜配送",
            "supplier_licence": "JY13301000000001",
            "product": "青菜",
            "batch_no": "B-0228",
            "delivered_on": "2026-02-28",
            "quantity": "25.5",
            "received_by": "receiver",
        },
        headers=h,
    )
    assert old.status_code == 201, old.text
    r = client.post(
        "/api/v1/rapid-tests",
        json=rapid_test_body("site-a1", tested_at=tested_at),
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert r.json()["flagged"] == 0


POLICY = {
    "site_id": "site-a1",
    "insurer": "PICC",
    "cover_cny": "5000000.00",
    "premium_cny": "3200.00",
}


@pytest.mark.parametrize(
    ("zone", "at", "expected"),
    [
        # the last evening of the 2025 policy in Berlin is already 2026 in Beijing
        ("Europe/Berlin", "2025-12-31T20:00:00+01:00", "P-2025"),
        # New Year's Eve in New York is New Year's Day in Beijing
        ("America/New_York", "2025-12-31T20:00:00-05:00", "P-2025"),
        ("Asia/Shanghai", "2025-12-31T23:59:00+08:00", "P-2025"),
        ("Asia/Shanghai", "2026-01-01T00:00:00+08:00", "P-2026"),
    ],
)
def test_policy_in_force_follows_the_regions_calendar(
    client: TestClient,
    world: World,
    conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    zone: str,
    at: str,
    expected: str,
) -> None:
    monkeypatch.setenv("BK_TIME_ZONE", zone)
    h = world.headers("admin")
    for no, first, last in (
        ("P-2025", "2025-01-01", "2025-12-31"),
        ("P-2026", "2026-01-01", "2026-12-31"),
    ):
        r = client.post(
            "/api/v1/policies",
            json={**POLICY, "policy_no": no, "starts_on": first, "ends_on": last},
            headers=h,
        )
        assert r.status_code == 201, r.text
    r = client.get("/api/v1/policies/in-force", params={"site_id": "site-a1", "at": at}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["policy_no"] == expected
    inc = client.post(
        "/api/v1/incidents",
        json={"site_id": "site-a1", "occurred_at": at, "kind": "illness"},
        headers=h,
    )
    assert inc.status_code == 201, inc.text
    policy_id = inc.json()["policy_id"]
    row = conn.execute("SELECT policy_no FROM policies WHERE id = %s", (policy_id,)).fetchone()
    assert row is not None
    assert row[0] == expected
    # a ticket opened then belongs to the same policy (its page and the insurer's link)
    ticket_id = world.ticket["site-a1"]
    conn.execute("UPDATE tickets SET opened_at = %s WHERE id = %s", (at, ticket_id))
    linked = client.get(f"/api/v1/tickets/{ticket_id}/policy", headers=h)
    assert linked.json()["policy_no"] == expected
    detail = client.get(f"/api/v1/tickets/{ticket_id}", headers=h).json()
    assert detail["policy"]["policy_no"] == expected


def test_disinfection_export_shows_a_sites_times_in_the_zone_its_day_is_counted_in(
    db_url: str,
    settings: ApiSettings,
    conn: psycopg.Connection[Any],
    hook: HookServer,
    admin_headers: dict[str, str],
) -> None:
    # a site whose meal schedule is kept in Berlin time, in a region on China time: its
    # cycle of 23:30 on 2 March (Berlin) is 06:30 on 3 March in Beijing
    data = site_data(hook.url)
    s1 = data["sites"][0]
    s1["sensors"].append({"id": "cab-1", "name": "消毒柜 1", "profile": "disinfection"})
    s1["meals"] = {
        "timezone": "Europe/Berlin",
        "services": [{"meal": "dinner", "start": "18:00", "end": "19:00"}],
    }
    sync_registry(conn, parse_site_file(data))
    start = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)
    conn.execute(
        """INSERT INTO disinfection_cycles (sensor_id, site_id, started_at, ended_at, peak_c,
               held_s, verdict, min_temp_c, min_hold_s)
           VALUES ('cab-1', %s, %s, %s + interval '15 minutes', 104, 720, 'valid', 100, 600)""",
        (s1["id"], start, start),
    )
    app = create_app(settings, common=CommonSettings(database_url=db_url))
    with TestClient(app, headers=admin_headers) as c:
        text = c.get("/api/v1/disinfection/cycles.csv").text
    [row] = text.lstrip("\ufeff").splitlines()[1:]
    cells = row.split(",")
    assert cells[1] == "2026-03-02"  # the site's day
    assert cells[4:6] == ["2026-03-02 23:30:00", "2026-03-02 23:45:00"]  # on that day
