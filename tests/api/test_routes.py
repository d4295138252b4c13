"""The REST API over HTTP (TestClient) against a real PostgreSQL, workers off."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from tests.api.conftest import T0, insert_alarm, insert_finding

pytestmark = pytest.mark.usefixtures("registry")

NOW = T0 + timedelta(minutes=1)


@pytest.fixture
def client(
    db_url: str, settings: ApiSettings, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    app = create_app(settings, common=CommonSettings(database_url=db_url))
    with TestClient(app, headers=admin_headers) as c:
        yield c


@pytest.fixture
def seeded(conn: psycopg.Connection[Any], settings: ApiSettings, registry: None) -> dict[str, int]:
    """Three alarms (two fridge, one freezer) whose findings opened two tickets."""
    ids = {}
    for i, (sensor, status) in enumerate(
        [("fridge-1", "cleared"), ("freezer-1", "active"), ("fridge-1", "active")]
    ):
        at = T0 + timedelta(hours=i)
        aid = insert_alarm(
            conn, key=f"{sensor}:temp_high:{i}", sensor_id=sensor, status=status, raised_at=at
        )
        insert_finding(
            conn,
            key=f"alarm:{aid}:raised",
            subject=sensor,
            occurred_at=at,
            payload={"alarm_id": aid},
            notify=False,
        )
        ids[f"alarm{i}"] = aid
    insert_finding(
        conn, key="v1", kind="violation", subject="cam-1", rule="no_mask", tier=2, notify=False
    )
    process_findings(conn, now=NOW, settings=settings)
    return ids


@pytest.mark.usefixtures("seeded")
def test_list_alarms_newest_first_with_filters_and_pages(client: TestClient) -> None:
    r = client.get("/api/v1/alarms")
    assert r.status_code == 200
    body = r.json()
    assert body["count"] == 3
    assert [a["raised_at"] for a in body["data"]] == sorted(
        (a["raised_at"] for a in body["data"]), reverse=True
    )
    assert all(a["ticket_id"] is not None for a in body["data"])
    fridge_tickets = {a["ticket_id"] for a in body["data"] if a["sensor_id"] == "fridge-1"}
    assert len(fridge_tickets) == 1  # the repeat joined the open ticket

    active = client.get("/api/v1/alarms", params={"status": "active"}).json()
    assert active["count"] == 2
    page = client.get("/api/v1/alarms", params={"limit": 1, "offset": 1}).json()
    assert (page["count"], len(page["data"]), page["offset"]) == (3, 1, 1)
    assert page["data"][0]["id"] == body["data"][1]["id"]
    assert client.get("/api/v1/alarms", params={"site_id": "school-002"}).json()["count"] == 0
    assert client.get("/api/v1/alarms", params={"rule": "temp_low"}).json()["data"] == []
    assert client.get("/api/v1/alarms", params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/alarms", params={"status": "nonsense"}).status_code == 422


def test_acknowledge_alarm(
    client: TestClient, seeded: dict[str, int], conn: psycopg.Connection[Any]
) -> None:
    aid = seeded["alarm1"]
    r = client.post(f"/api/v1/alarms/{aid}/acknowledge", json={"by": "officer-1", "note": "门关好"})
    assert r.status_code == 200
    assert r.json()["status"] == "acknowledged"
    assert r.json()["acknowledged_by"] == "admin"  # the signed-in user, not the body
    again = client.post(f"/api/v1/alarms/{aid}/acknowledge", json={"note": "again"})
    assert again.status_code == 200
    assert again.json()["acknowledged_at"] == r.json()["acknowledged_at"]  # first one stands
    audit = conn.execute(
        "SELECT actor, action, target FROM audit_log WHERE action = 'alarm.acknowledge'"
    ).fetchall()
    assert audit == [("admin", "alarm.acknowledge", f"alarm:{aid}")]

    cleared = client.post(f"/api/v1/alarms/{seeded['alarm0']}/acknowledge", json={"by": "x"})
    assert cleared.status_code == 409
    missing = client.post("/api/v1/alarms/999999/acknowledge", json={"by": "x"})
    assert missing.status_code == 404
    assert missing.json() == {"detail": "alarm 999999 not found"}
    assert client.post(f"/api/v1/alarms/{aid}/acknowledge", json={"x": 1}).status_code == 422


@pytest.mark.usefixtures("seeded")
def test_list_tickets_and_filters(client: TestClient) -> None:
    body = client.get("/api/v1/tickets").json()
    assert body["count"] == 3
    by_subject = {t["subject"]: t for t in body["data"]}
    assert by_subject["fridge-1"]["occurrences"] == 2
    assert by_subject["cam-1"]["source"] == "violation"
    assert by_subject["cam-1"]["title"] == "未戴口罩 no mask: 凉菜专间"
    assert all(t["status"] == "open" for t in body["data"])
    assert all(t["overdue"] is True for t in body["data"])  # deadlines of 2026-03 have passed

    assert client.get("/api/v1/tickets", params={"rule": "no_mask"}).json()["count"] == 1
    assert client.get("/api/v1/tickets", params={"tier": 1}).json()["count"] == 0
    assert client.get("/api/v1/tickets", params={"status": "closed"}).json()["count"] == 0
    assert client.get("/api/v1/tickets", params={"tier": 4}).status_code == 422
    page = client.get("/api/v1/tickets", params={"limit": 2}).json()
    assert (len(page["data"]), page["count"]) == (2, 3)


@pytest.mark.usefixtures("seeded")
def test_ticket_detail_and_404(client: TestClient) -> None:
    tickets = client.get("/api/v1/tickets", params={"rule": "temp_high"}).json()["data"]
    fridge = next(t for t in tickets if t["subject"] == "fridge-1")
    r = client.get(f"/api/v1/tickets/{fridge['id']}")
    assert r.status_code == 200
    detail = r.json()
    assert [e["kind"] for e in detail["events"]] == ["opened", "occurrence"]
    assert detail["occurrences"] == 2
    assert len(detail["finding_ids"]) == 2
    assert detail["details"]["subject_name"] == "冷藏柜 1"
    missing = client.get("/api/v1/tickets/424242")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "ticket 424242 not found"


@pytest.mark.usefixtures("seeded")
def test_sites_with_counts(client: TestClient) -> None:
    body = client.get("/api/v1/sites").json()
    assert body["count"] == 2
    s1, s2 = body["data"]
    assert (s1["id"], s1["open_tickets"], s1["overdue_tickets"], s1["active_alarms"]) == (
        "school-001",
        3,
        3,
        2,
    )
    assert (s2["id"], s2["open_tickets"], s2["active_alarms"]) == ("school-002", 0, 0)
    assert client.get("/api/v1/sites", params={"region_id": "nowhere"}).json()["count"] == 0


def test_sensor_readings_raw_and_rollups(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    for i in range(12):
        conn.execute(
            "INSERT INTO sensor_readings (sensor_id, ts, temp_c, door_open) "
            "VALUES (%s, %s, %s, %s)",
            ("fridge-1", T0 + timedelta(minutes=i), 4.0 + i * 0.5, i == 3),
        )
    if conn.execute("SELECT to_regclass('readings_5m_store')").fetchone() != (None,):
        # Plain PostgreSQL: the rollup rows the ingest writer keeps (TimescaleDB's
        # real-time aggregates compute the same from the readings).
        conn.execute(
            "INSERT INTO readings_5m_store (sensor_id, bucket, temp_min, temp_max, temp_sum, n) "
            "VALUES ('fridge-1', %s, 4.0, 6.0, 25.0, 5), ('fridge-1', %s, 6.5, 8.5, 37.5, 5), "
            "('fridge-1', %s, 9.0, 9.5, 18.5, 2)",
            (T0, T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)),
        )
        conn.execute(
            "INSERT INTO readings_1h_store (sensor_id, bucket, temp_min, temp_max, temp_sum, n) "
            "VALUES ('fridge-1', %s, 4.0, 9.5, 81.0, 12)",
            (T0,),
        )
    span = {"from": "2026-03-02T08:00:00Z", "to": "2026-03-02T16:10:00+08:00"}
    raw = client.get("/api/v1/sensors/fridge-1/readings", params=span).json()
    assert raw["resolution"] == "raw"
    assert [p["temp_c"] for p in raw["points"]] == [4.0 + i * 0.5 for i in range(10)]
    assert raw["points"][3]["door_open"] is True
    assert raw["truncated"] is False

    limited = client.get("/api/v1/sensors/fridge-1/readings", params={**span, "limit": 4}).json()
    assert (len(limited["points"]), limited["truncated"]) == (4, True)

    five = client.get(
        "/api/v1/sensors/fridge-1/readings", params={**span, "resolution": "5m"}
    ).json()
    assert [(p["temp_c"], p["temp_min_c"], p["temp_max_c"], p["n"]) for p in five["points"]] == [
        (5.0, 4.0, 6.0, 5),
        (7.5, 6.5, 8.5, 5),
    ]
    hour = client.get("/api/v1/sensors/fridge-1/readings", params={**span, "resolution": "1h"})
    assert [(p["temp_c"], p["n"]) for p in hour.json()["points"]] == [(6.75, 12)]

    assert client.get("/api/v1/sensors/nope/readings").status_code == 404
    bad = client.get(
        "/api/v1/sensors/fridge-1/readings",
        params={"from": "2026-03-02T09:00:00Z", "to": "2026-03-02T08:00:00Z"},
    )
    assert bad.status_code == 422
    naive = client.get("/api/v1/sensors/fridge-1/readings", params={"from": "2026-03-02T08:00"})
    assert naive.status_code == 422
    assert (
        client.get("/api/v1/sensors/fridge-1/readings", params={"resolution": "1d"}).status_code
        == 422
    )


def test_notifications_delivery_log(
    client: TestClient,
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
) -> None:
    from api.services.notify.channels import build_channels, close_channels
    from api.services.notify.dispatcher import dispatch_due

    conn.execute(
        "INSERT INTO person_channels (person_id, kind, address) "
        "VALUES ('officer-1', 'wecom', 'http://127.0.0.1:9/cgi-bin/webhook/send?key=SECRETKEY')"
    )
    insert_finding(conn, key="k")
    process_findings(conn, now=NOW, settings=settings)
    chans = build_channels(settings)
    try:
        dispatch_due(conn, now=NOW, settings=settings, channels=chans)
    finally:
        close_channels(chans)
    body = client.get("/api/v1/notifications").json()
    assert body["count"] == 3
    by_channel = {n["channel"]: n for n in body["data"]}
    assert by_channel["webhook"]["status"] == "sent"
    assert by_channel["email"]["status"] == "sent"
    wecom = by_channel["wecom"]
    assert wecom["status"] == "pending"
    assert "SECRETKEY" not in wecom["address"]
    assert wecom["address"] == "http://127.0.0.1:9/…TKEY"  # as the channels page masks it
    email = by_channel["email"]["address"]
    assert email.endswith("@school.example")
    assert "officer-1@" not in email  # an address is not for every reader of the outbox
    assert [a["ok"] for a in wecom["log"]] == [False]
    assert [a["ok"] for a in by_channel["webhook"]["log"]] == [True]
    sent = client.get("/api/v1/notifications", params={"status": "sent"}).json()
    assert sent["count"] == 2
    tid = by_channel["webhook"]["ticket_id"]
    assert client.get("/api/v1/notifications", params={"ticket_id": tid}).json()["count"] == 3
    assert client.get("/api/v1/notifications", params={"status": "x"}).status_code == 422


def test_health_metrics_and_openapi(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    assert client.get("/api/v1/healthz").json() == {"status": "ok", "database": True}
    insert_finding(conn, key="waiting", notify=False)
    metrics = client.get("/api/v1/metrics")
    assert metrics.status_code == 200
    assert 'bk_api_backlog{outbox="findings"} 1.0' in metrics.text
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for p in [
        "/api/v1/alarms",
        "/api/v1/alarms/{alarm_id}/acknowledge",
        "/api/v1/tickets",
        "/api/v1/tickets/{ticket_id}",
        "/api/v1/sites",
        "/api/v1/sensors/{sensor_id}/readings",
        "/api/v1/notifications",
        "/api/v1/healthz",
    ]:
        assert p in paths, p
    assert "404" in paths["/api/v1/tickets/{ticket_id}"]["get"]["responses"]
    assert "newest opened first" in paths["/api/v1/tickets"]["get"]["description"]


def test_health_reports_unreachable_database(settings: ApiSettings) -> None:
    from tests.support.services import free_port

    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    quick = settings.model_copy(update={"db_timeout_s": 0.5})
    app = create_app(quick, common=CommonSettings(database_url=url))
    with TestClient(app) as c:
        r = c.get("/api/v1/healthz")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "database": False}
        assert c.get("/api/v1/sites").status_code == 503
