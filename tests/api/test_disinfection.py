"""The disinfection ledger API: per-role scope, filters refused by name, CSV and XLSX exports."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.app import create_app
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from ingest.rules.disinfection_windows import JUDGE_GRACE, sweep_disinfection
from tests.api.conftest import HookServer, make_user_token, site_data

# Monday 2026-03-02, lunch 11:30–12:30 Beijing time (03:30–04:30 UTC).
LUNCH_END = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)
MEALS = {"services": [{"meal": "lunch", "start": "11:30", "end": "12:30"}]}


@pytest.fixture
def ledger(conn: psycopg.Connection[Any], hook: HookServer) -> None:
    """Two canteens with a cabinet each, their cycles, and one judged lunch."""
    data = site_data(hook.url)
    s1, s2 = data["sites"]
    s1["sensors"].append({"id": "cab-1", "name": "消毒柜 1", "profile": "disinfection"})
    s1["meals"] = MEALS
    s2["sensors"] = [
        {
            "id": "cab-2",
            "name": "=HYPERLINK()",
            "profile": "disinfection",
            "cabinet": {"type": "infrared"},
        }
    ]
    s2["meals"] = MEALS
    sync_registry(conn, parse_site_file(data))
    conn.execute(
        "UPDATE disinfection_cabinets SET created_at = %s", (LUNCH_END - timedelta(days=1),)
    )
    cycles = [
        ("cab-1", "school-001", 0, 900, 104.5, 720.0, "valid", 100, 600),
        ("cab-1", "school-001", 1440, 300, 101.0, 240.0, "too_short", 100, 600),
        ("cab-2", "school-002", 10, 900, 110.0, 0.0, "too_cool", 120, 600),
    ]
    for sensor, site, after_min, dur_s, peak, held, verdict, tmin, hold in cycles:
        start = LUNCH_END + timedelta(minutes=after_min)
        conn.execute(
            """INSERT INTO disinfection_cycles (sensor_id, site_id, started_at, ended_at, peak_c,
                   held_s, verdict, min_temp_c, min_hold_s)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                sensor,
                site,
                start,
                start + timedelta(seconds=dur_s),
                peak,
                held,
                verdict,
                tmin,
                hold,
            ),
        )
    assert (
        sweep_disinfection(conn, LUNCH_END + timedelta(hours=1) + JUDGE_GRACE) == 1
    )  # school-002 failed


@pytest.fixture
def app(db_url: str, settings: ApiSettings) -> Any:
    return create_app(settings, common=CommonSettings(database_url=db_url))


@pytest.fixture
def officer(app: Any, conn: psycopg.Connection[Any], ledger: None) -> Iterator[TestClient]:
    token = make_user_token(conn, username="off1", role="officer", site_ids=("school-001",))
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        yield c


@pytest.fixture
def admin(app: Any, admin_headers: dict[str, str], ledger: None) -> Iterator[TestClient]:
    with TestClient(app, headers=admin_headers) as c:
        yield c


def test_officer_sees_only_their_sites_ledger(officer: TestClient) -> None:
    body = officer.get("/api/v1/disinfection/cycles").json()
    assert body["count"] == 2
    assert {c["site_id"] for c in body["data"]} == {"school-001"}
    newest, first = body["data"]
    assert (first["verdict"], first["duration_s"], first["peak_c"]) == ("valid", 900.0, 104.5)
    assert first["day"] == "2026-03-02"
    assert newest["day"] == "2026-03-03"  # 24 h later, local date
    assert first["cabinet_type"] == "steam"
    other = officer.get("/api/v1/disinfection/cycles", params={"site_id": "school-002"})
    assert other.status_code == 404
    assert officer.get("/api/v1/disinfection/checks").json()["data"] == [
        {
            "site_id": "school-001",
            "sensor_id": "cab-1",
            "sensor_name": first["sensor_name"],  # the cabinet as the kitchen names it
            "service_date": "2026-03-02",
            "meal": "lunch",
            "meal_start": "2026-03-02T03:30:00Z",
            "meal_end": "2026-03-02T04:30:00Z",
            "window_end": "2026-03-02T05:30:00Z",
            "outcome": "done",
            "cycle_id": first["id"],
            "ticket_id": None,
            "ticket_no": None,
        }
    ]
    assert first["sensor_name"] != "cab-1"
    csv_text = officer.get("/api/v1/disinfection/cycles.csv").text
    assert "school-002" not in csv_text
    assert "=HYPERLINK" not in csv_text


def test_admin_filters_and_exports(admin: TestClient) -> None:
    day = admin.get(
        "/api/v1/disinfection/cycles", params={"date_from": "2026-03-02", "date_to": "2026-03-02"}
    )
    assert [c["sensor_id"] for c in day.json()["data"]] == ["cab-2", "cab-1"]
    bad = admin.get("/api/v1/disinfection/cycles", params={"verdict": "great"}).json()
    assert bad["errors"][0]["loc"] == ["query", "verdict"]
    later = admin.get(
        "/api/v1/disinfection/cycles", params={"date_from": "2026-03-03", "date_to": "2026-03-01"}
    )
    assert later.status_code == 422
    assert "date_from" in later.json()["detail"]
    [failed] = admin.get("/api/v1/disinfection/checks", params={"outcome": "failed"}).json()["data"]
    assert failed["sensor_id"] == "cab-2"
    csv_resp = admin.get("/api/v1/disinfection/cycles.csv")
    assert csv_resp.headers["content-type"].startswith("text/csv")
    lines = csv_resp.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("单位,日期,消毒设备,消毒方式,开始时间")
    assert len(lines) == 4
    assert "'=HYPERLINK()" in csv_resp.text  # a formula-looking name is defused
    assert "第一实验小学食堂,2026-03-02,消毒柜 1,蒸汽,2026-03-02 12:30:00" in csv_resp.text
    xlsx = admin.get("/api/v1/disinfection/cycles.xlsx", params={"lang": "en"})
    ws = load_workbook(io.BytesIO(xlsx.content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("Site", "Date", "Cabinet")
    assert {r[9] for r in rows[1:]} == {"valid", "too short", "too cool"}
    assert admin.get("/api/v1/disinfection/cycles.pdf").status_code == 404


def test_device_token_is_refused(app: Any, conn: psycopg.Connection[Any], ledger: None) -> None:
    token = make_user_token(conn, username="box", role="device", site_ids=("school-001",))
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/api/v1/disinfection/cycles").status_code == 403
