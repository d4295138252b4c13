"""Insurance over HTTP: policy in force, incidents, the claim bundle, the insurer's view."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import datetime, timedelta
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
from tests.api.conftest import T0, insert_alarm, insert_finding, make_user_token

pytestmark = pytest.mark.usefixtures("registry")

POLICY_2025 = {
    "site_id": "school-001",
    "insurer": "PICC",
    "policy_no": "PICC-2025-001",
    "cover_cny": "5000000.00",
    "premium_cny": "3200.00",
    "starts_on": "2025-01-01",
    "ends_on": "2025-12-31",
}
POLICY_2026 = {
    **POLICY_2025,
    "policy_no": "PICC-2026-001",
    "starts_on": "2026-01-01",
    "ends_on": "2026-12-31",
}


@pytest.fixture
def app_settings(settings: ApiSettings, tmp_path: Any) -> ApiSettings:
    return settings.model_copy(update={"evidence_dir": tmp_path / "evidence"})


@pytest.fixture
def client(
    db_url: str, app_settings: ApiSettings, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    app = create_app(app_settings, common=CommonSettings(database_url=db_url))
    with TestClient(app, headers=admin_headers) as c:
        yield c


def test_policy_in_force_follows_china_dates_and_links_tickets(
    client: TestClient, conn: psycopg.Connection[Any], app_settings: ApiSettings
) -> None:
    p25 = client.post("/api/v1/policies", json=POLICY_2025)
    assert p25.status_code == 201, p25.text
    p26 = client.post("/api/v1/policies", json=POLICY_2026).json()
    assert client.post("/api/v1/policies", json=POLICY_2025).status_code == 409  # number taken
    bad = {**POLICY_2025, "policy_no": "x", "ends_on": "2024-01-01"}
    assert client.post("/api/v1/policies", json=bad).status_code == 422

    def in_force(at: str) -> Any:
        r = client.get("/api/v1/policies/in-force", params={"site_id": "school-001", "at": at})
        return r.json()["policy_no"] if r.status_code == 200 else r.status_code

    assert in_force("2025-12-31T15:59:00Z") == "PICC-2025-001"  # 23:59 in Beijing
    assert in_force("2025-12-31T16:00:00Z") == "PICC-2026-001"  # 00:00 on 1 January
    assert in_force("2027-01-01T00:00:00Z") == 404
    assert (
        client.get(
            "/api/v1/policies/in-force", params={"site_id": "school-002", "at": "2026-03-01T00:00Z"}
        ).status_code
        == 404
    )

    insert_finding(conn, key="f1", notify=False)
    process_findings(conn, now=T0, settings=app_settings)  # ticket opened 2026-03-02
    ticket_id = conn.execute("SELECT id FROM tickets").fetchone()
    assert ticket_id is not None
    linked = client.get(f"/api/v1/tickets/{ticket_id[0]}/policy")
    assert linked.status_code == 200
    assert linked.json()["id"] == p26["id"]
    assert client.get("/api/v1/tickets/999999/policy").status_code == 404

    inc = client.post(
        "/api/v1/incidents",
        json={"site_id": "school-001", "occurred_at": "2025-06-01T04:00:00Z", "kind": "illness"},
    ).json()
    assert inc["policy_id"] == p25.json()["id"]
    uninsured = client.post(
        "/api/v1/incidents",
        json={"site_id": "school-002", "occurred_at": "2026-06-01T04:00:00Z", "kind": "complaint"},
    ).json()
    assert uninsured["policy_id"] is None


def _readings(conn: psycopg.Connection[Any], at: Any) -> int:
    """Readings of fridge-1 every 30 min from at - 30 h to at + 30 h; return how many lie ±24 h."""
    inside = 0
    for k in range(-60, 61):
        ts = at + timedelta(minutes=30 * k)
        conn.execute(
            "INSERT INTO sensor_readings (sensor_id, ts, temp_c) VALUES ('fridge-1', %s, %s)",
            (ts, 4.0 + (k % 7)),
        )
        inside += abs(k) <= 48
    return inside


def _incident(client: TestClient, at: datetime) -> dict[str, Any]:
    """An illness at school-001 at ``at``, recorded through the API."""
    r = client.post(
        "/api/v1/incidents",
        json={"site_id": "school-001", "occurred_at": at.isoformat(), "kind": "illness"},
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _bundle(client: TestClient, incident_id: int) -> zipfile.ZipFile:
    """The incident's claim bundle, opened."""
    r = client.get(f"/api/v1/incidents/{incident_id}/bundle.zip")
    assert r.status_code == 200, r.text
    return zipfile.ZipFile(io.BytesIO(r.content))


def test_claim_bundle_is_one_zip_with_manifest_tickets_evidence_and_sensor_trace(
    client: TestClient, conn: psycopg.Connection[Any], app_settings: ApiSettings
) -> None:
    client.post("/api/v1/policies", json=POLICY_2026)
    incident_at = T0 + timedelta(hours=6)
    inside = _readings(conn, incident_at)
    aid = insert_alarm(conn, key="fridge-1:temp_high:1", raised_at=T0)
    insert_finding(conn, key=f"alarm:{aid}:raised", payload={"alarm_id": aid}, notify=False)
    snapshot = b"\xff\xd8\xff\xe0 not really a jpeg but stored by ingest"
    conn.execute(
        "INSERT INTO evidence_blobs (sha256, media_type, bytes) VALUES (%s, 'image/jpeg', %s)",
        ("ab" * 32, snapshot),
    )
    conn.execute(
        """INSERT INTO violations (event_id, site_id, box_id, camera_id, rule, started_at,
                                   confidence, evidence_sha256)
           VALUES ('ev-1', 'school-001', 'box-1', 'cam-1', 'no_mask', %s, 0.9, %s)""",
        (T0, "ab" * 32),
    )
    insert_finding(
        conn,
        key="violation:ev-1",
        kind="violation",
        subject="cam-1",
        rule="no_mask",
        payload={"event_id": "ev-1"},
        notify=False,
    )
    # A ticket of the other site and one closed long before must stay out.
    insert_finding(conn, key="other", site_id="school-002", subject="x", notify=False)
    process_findings(conn, now=T0, settings=app_settings)
    old = conn.execute(
        """INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier, status, title,
                                opened_at, due_at, closed_at, last_occurrence_at)
           VALUES ('OLD-1', 'school-001', 'manual', 'r', 's', 2, 'closed', 'old', %s, %s, %s, %s)
           RETURNING id""",
        (T0 - timedelta(days=30), T0, T0 - timedelta(days=20), T0 - timedelta(days=30)),
    ).fetchone()
    assert old is not None
    conn.execute(
        "INSERT INTO ticket_events (ticket_id, actor, kind, note, data) "
        "VALUES (%s, 'officer-1', 'comment', 'fixed', %s)",
        (conn.execute("SELECT min(id) FROM tickets").fetchone()[0], Jsonb({})),  # type: ignore[index]
    )

    incident = client.post(
        "/api/v1/incidents",
        json={
            "site_id": "school-001",
            "occurred_at": incident_at.isoformat(),
            "kind": "illness",
            "description": "3 pupils with stomach ache",
            "claim_status": "filed",
            "amount_cny": "12000.50",
        },
    ).json()
    r = client.get(f"/api/v1/incidents/{incident['id']}/bundle.zip")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(zf.namelist())
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["incident"]["id"] == incident["id"]
    assert manifest["incident"]["amount_cny"] == "12000.50"
    assert manifest["policy"]["policy_no"] == "PICC-2026-001"
    assert len(manifest["tickets"]) == 2
    assert "OLD-1" not in manifest["tickets"]
    assert set(manifest["files"]) == names - {"manifest.json"}
    for no in manifest["tickets"]:
        doc = json.loads(zf.read(f"tickets/{no}.json"))
        assert doc["ticket"]["site_id"] == "school-001"
        assert doc["events"][0]["kind"] == "opened"
        assert doc["events"][0]["actor_name"] is None  # the system, not a person
        assert doc["findings"]
    mask = next(
        json.loads(zf.read(f"tickets/{no}.json"))
        for no in manifest["tickets"]
        if json.loads(zf.read(f"tickets/{no}.json"))["ticket"]["rule"] == "no_mask"
    )
    assert mask["evidence"] == ["ab" * 32]
    assert zf.read(f"evidence/{'ab' * 32}.jpg") == snapshot
    rows = list(csv.DictReader(io.StringIO(zf.read("sensors.csv").decode())))
    assert len(rows) == inside == manifest["sensor_readings"] == 97
    assert {row["sensor_id"] for row in rows} == {"fridge-1"}
    assert client.get("/api/v1/incidents/999/bundle.zip").status_code == 404


def test_insurer_reads_the_risk_record_of_insured_sites_only_and_writes_nothing(
    client: TestClient, conn: psycopg.Connection[Any], db_url: str, app_settings: ApiSettings
) -> None:
    client.post("/api/v1/policies", json=POLICY_2026)
    insert_finding(conn, key="f1", notify=False)
    process_findings(conn, now=utcnow() - timedelta(days=10), settings=app_settings)  # overdue
    client.post(
        "/api/v1/incidents",
        json={"site_id": "school-001", "occurred_at": T0.isoformat(), "kind": "complaint"},
    )
    client.post("/api/v1/risk/compute")
    # a rival's policy on the same canteen (a top-up cover): not PICC's to read
    rival = {**POLICY_2026, "insurer": "Other Mutual", "policy_no": "OM-2026-7"}
    assert client.post("/api/v1/policies", json=rival).status_code == 201
    token = make_user_token(conn, username="picc", role="insurer", insurer="PICC")
    other = make_user_token(conn, username="other", role="insurer", insurer="Ping An")
    app = create_app(app_settings, common=CommonSettings(database_url=db_url))
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as insurer:
        r = insurer.get("/api/v1/insurance/risk-record", params={"site_id": "school-001"})
        assert r.status_code == 200, r.text
        rec = r.json()
        assert (rec["open_tickets"], rec["overdue_tickets"]) == (1, 1)
        assert [p["policy_no"] for p in rec["policies"]] == ["PICC-2026-001"]
        listed = insurer.get("/api/v1/policies").json()
        assert [p["policy_no"] for p in listed] == ["PICC-2026-001"]
        assert len(rec["incidents"]) == 1
        assert len(rec["history"]) == 1
        assert rec["camera_uptime"] == 1.0
        assert rec["score"] > 0
        assert (
            insurer.get(
                "/api/v1/insurance/risk-record", params={"site_id": "school-002"}
            ).status_code
            == 404
        )  # not insured by PICC
        assert insurer.get("/api/v1/sites/school-001/risk").status_code == 200
        writes = [
            insurer.post("/api/v1/policies", json={**POLICY_2026, "policy_no": "n"}),
            insurer.post(
                "/api/v1/incidents",
                json={"site_id": "school-001", "occurred_at": T0.isoformat(), "kind": "x"},
            ),
            insurer.post("/api/v1/risk/compute"),
            insurer.post("/api/v1/inspections/plan", json={"n": 1, "seed": 1}),
        ]
        assert [w.status_code for w in writes] == [403, 403, 403, 403]
    with TestClient(app, headers={"Authorization": f"Bearer {other}"}) as stranger:
        assert (
            stranger.get(
                "/api/v1/insurance/risk-record", params={"site_id": "school-001"}
            ).status_code
            == 404
        )
        assert stranger.get("/api/v1/policies").json() == []


def test_the_risk_records_of_every_insured_canteen_come_from_one_request(
    client: TestClient, conn: psycopg.Connection[Any], db_url: str, app_settings: ApiSettings
) -> None:
    assert client.get("/api/v1/insurance/risk-records").json()["data"] == []  # none insured
    client.post("/api/v1/policies", json=POLICY_2026)
    ping_an = {**POLICY_2026, "site_id": "school-002", "insurer": "Ping An", "policy_no": "PA-7"}
    assert client.post("/api/v1/policies", json=ping_an).status_code == 201
    insert_finding(conn, key="f1", notify=False)  # school-001: an overdue ticket
    process_findings(conn, now=utcnow() - timedelta(days=10), settings=app_settings)
    assert client.post("/api/v1/risk/compute").status_code == 200  # the stored scores

    every = client.get("/api/v1/insurance/risk-records").json()
    assert [r["site_id"] for r in every["data"]] == ["school-001", "school-002"]  # worst first
    assert (every["total"], every["limit"], every["offset"]) == (2, 50, 0)
    pages = [
        client.get("/api/v1/insurance/risk-records", params={"limit": 1, "offset": o}).json()
        for o in (0, 1, 2)
    ]
    assert [[r["site_id"] for r in p["data"]] for p in pages] == [
        ["school-001"],
        ["school-002"],
        [],
    ]
    assert {p["total"] for p in pages} == {2}
    assert client.get("/api/v1/insurance/risk-records", params={"limit": 0}).status_code == 422
    first, second = every["data"]
    assert first["score"] > second["score"]
    assert (first["site_name"], second["site_name"]) == ("第一实验小学食堂", "第二中学食堂")
    assert (first["open_tickets"], first["overdue_tickets"]) == (1, 1)
    assert every["window_days"] == first["window_days"] > 0
    one = client.get("/api/v1/insurance/risk-record", params={"site_id": "school-001"}).json()
    assert {k: one[k] for k in first} == first  # the list says what the record says
    assert not {"incidents", "history", "policies"} & set(first)  # lists stay per canteen

    # the same records as a spreadsheet, in the reader's words
    sheet = client.get("/api/v1/insurance/risk-records.csv")
    assert sheet.status_code == 200, sheet.text
    assert sheet.headers["content-disposition"] == 'attachment; filename="risk-records.csv"'
    rows = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["食堂", "风险分", "待处理整改单"]
    assert [r[0] for r in rows[1:]] == ["第一实验小学食堂", "第二中学食堂"]
    assert rows[1][2:4] == ["1", "1"]
    assert rows[1][7] == "100.0"  # camera uptime in percent
    book = client.get("/api/v1/insurance/risk-records.xlsx", params={"lang": "en"})
    assert book.status_code == 200, book.text
    ws = load_workbook(io.BytesIO(book.content), read_only=True).worksheets[0]
    table = [list(r) for r in ws.iter_rows(values_only=True)]
    assert table[0][:2] == ["Canteen", "Risk score"]
    assert [r[0] for r in table[1:]] == ["第一实验小学食堂", "第二中学食堂"]
    assert table[1][1] == round(first["score"], 1)
    assert (
        client.get("/api/v1/insurance/risk-records.csv", params={"lang": "fr"}).status_code == 422
    )

    app = create_app(app_settings, common=CommonSettings(database_url=db_url))
    for username, insurer, sites in (
        ("picc", "PICC", ["school-001"]),
        ("pa", "Ping An", ["school-002"]),
        ("none", "Nobody", []),
    ):
        token = make_user_token(conn, username=username, role="insurer", insurer=insurer)
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as insurer_client:
            got = insurer_client.get("/api/v1/insurance/risk-records")
            assert got.status_code == 200, got.text
            assert [r["site_id"] for r in got.json()["data"]] == sites, insurer
            sheet = insurer_client.get("/api/v1/insurance/risk-records.csv").content
            assert len(sheet.decode("utf-8-sig").splitlines()) == 1 + len(sites)  # theirs only


def test_a_claim_moves_on_step_by_step_and_its_history_travels_with_the_bundle(
    client: TestClient, conn: psycopg.Connection[Any], db_url: str, app_settings: ApiSettings
) -> None:
    client.post("/api/v1/policies", json=POLICY_2026)
    incident = client.post(
        "/api/v1/incidents",
        json={
            "site_id": "school-001",
            "occurred_at": T0.isoformat(),
            "kind": "foodborne_illness",
            "description": "2 pupils sick after lunch",
        },
    ).json()
    assert incident["claim_status"] == "none"
    tomorrow = (utcnow() + timedelta(days=1)).isoformat()
    for when in (
        tomorrow,
        "9999-12-31T23:00:00Z",
        "1999-12-31T23:00:00Z",
        "2100-01-01T00:00:00+08:00",
    ):
        r = client.post(
            "/api/v1/incidents",
            json={"site_id": "school-001", "occurred_at": when, "kind": "other"},
        )
        assert r.status_code == 422, (when, r.text)  # not yet happened, or out of range
    assert incident["claim_updated_at"] is None
    url = f"/api/v1/incidents/{incident['id']}/claim"
    assert client.get(url).json() == []

    # out of order: paying or accepting what was never filed
    r = client.post(url, json={"claim_status": "accepted"})
    assert r.status_code == 409
    assert "claim is none: it can go to filed, not accepted" in r.text
    # a paid claim needs its amount, a rejected one the insurer's reason
    r = client.post(url, json={"claim_status": "paid"})
    assert r.status_code == 409  # not accepted yet (the order is checked first)
    assert client.post(url, json={"claim_status": "rejected"}).status_code == 422
    assert client.post(url, json={"claim_status": "filed", "amount_cny": -1}).status_code == 422
    assert client.post(url, json={"claim_status": "closed"}).status_code == 422
    assert client.post(url, json={"claim_status": "filed", "x": 1}).status_code == 422

    steps = [
        {"claim_status": "filed", "amount_cny": "8000", "note": "报案号 PICC-R-7"},
        {"claim_status": "rejected", "note": "等待病历"},
        {"claim_status": "filed", "note": "补充病历"},
        {"claim_status": "accepted", "amount_cny": "6500.00"},
        {"claim_status": "paid"},  # the amount agreed
    ]
    for step in steps:
        r = client.post(url, json=step)
        assert r.status_code == 201, r.text
    assert client.post(url, json={"claim_status": "filed"}).status_code == 409  # paid: final
    history = client.get(url).json()
    assert [(h["from_status"], h["to_status"]) for h in history] == [
        ("none", "filed"),
        ("filed", "rejected"),
        ("rejected", "filed"),
        ("filed", "accepted"),
        ("accepted", "paid"),
    ]
    assert history[1]["amount_cny"] == "8000.00"  # the amount carries over until changed
    assert history[0]["note"] == "报案号 PICC-R-7"
    assert {h["actor"] for h in history} == {"admin"}
    now = client.get(f"/api/v1/incidents/{incident['id']}").json()
    assert (now["claim_status"], now["amount_cny"]) == ("paid", "6500.00")
    assert now["claim_updated_by"] == "admin"
    assert now["claim_updated_at"] == history[-1]["at"]

    zf = _bundle(client, incident["id"])
    manifest = json.loads(zf.read("manifest.json"))
    assert [h["to_status"] for h in manifest["claim_history"]] == [
        "filed",
        "rejected",
        "filed",
        "accepted",
        "paid",
    ]
    # who recorded each step, as the account and as people know them (admin has no person)
    assert {(h["actor"], h["actor_name"]) for h in manifest["claim_history"]} == {
        ("admin", "admin")
    }

    # an incident recorded with its claim already filed starts its history there
    filed = client.post(
        "/api/v1/incidents",
        json={
            "site_id": "school-001",
            "occurred_at": T0.isoformat(),
            "kind": "foreign_object",
            "claim_status": "filed",
            "amount_cny": "300",
        },
    ).json()
    [first] = client.get(f"/api/v1/incidents/{filed['id']}/claim").json()
    # and its row says who recorded that step and when, as after any later step
    assert (filed["claim_updated_by"], filed["claim_updated_at"]) == ("admin", first["at"])
    assert (first["from_status"], first["to_status"], first["amount_cny"]) == (
        "none",
        "filed",
        "300.00",
    )

    # the insurer reads the history and records nothing; a site out of scope is not there
    token = make_user_token(conn, username="picc", role="insurer", insurer="PICC")
    officer2 = make_user_token(conn, username="off2", role="officer", site_ids=("school-002",))
    app = create_app(app_settings, common=CommonSettings(database_url=db_url))
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as insurer:
        assert len(insurer.get(url).json()) == 5
        assert insurer.post(url, json={"claim_status": "filed"}).status_code == 403
    with TestClient(app, headers={"Authorization": f"Bearer {officer2}"}) as stranger:
        assert stranger.get(url).status_code == 404
        assert stranger.post(f"{url}", json={"claim_status": "filed"}).status_code == 404
    assert client.get("/api/v1/incidents/0/claim").status_code == 422
    assert (
        client.post("/api/v1/incidents/999999/claim", json={"claim_status": "filed"}).status_code
        == 404
    )


def test_a_claim_about_an_incident_past_raw_retention_carries_the_hourly_trace(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """TimescaleDB keeps raw readings 400 days and the hourly rollup longer: a claim bundle
    about an older incident shipped an empty sensors.csv and said nothing. Now it carries the
    hourly trace, and the manifest says which trace it is."""
    client.post("/api/v1/policies", json=POLICY_2026)
    at = T0 + timedelta(hours=6)
    timescale = conn.execute(
        "SELECT bool_or(path = 'timescale') FROM schema_migrations"
    ).fetchone() == (True,)
    if timescale:  # the rollup outlives the raw chunk it was made from
        _readings(conn, at)
        conn.execute(
            "CALL refresh_continuous_aggregate('readings_1h', %s, %s)",
            (at - timedelta(days=2), at + timedelta(days=2)),
        )
        conn.execute("DELETE FROM sensor_readings WHERE sensor_id = 'fridge-1'")
    else:  # the writer's rollup rows, the raw rows gone
        for k in range(-30, 31):
            conn.execute(
                "INSERT INTO readings_1h_store (sensor_id, bucket, temp_min, temp_sum,"
                " temp_max, n) VALUES ('fridge-1', %s, 3, 8, 5, 2)",
                (at.replace(minute=0) + timedelta(hours=k),),
            )
    incident = _incident(client, at)
    zf = _bundle(client, incident["id"])
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["sensor_readings"] == 0
    assert manifest["sensor_trace"] == "hourly"
    hours = list(csv.DictReader(io.StringIO(zf.read("sensors_hourly.csv").decode())))
    assert len(hours) == manifest["sensor_hours"] >= 48
    assert {h["sensor_id"] for h in hours} == {"fridge-1"}
    assert "sensors_hourly.csv" in manifest["files"]


def test_a_claim_whose_window_retention_has_half_dropped_carries_raw_and_hourly(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """Retention drops whole days, oldest first: about 400 days on, the first day of a claim's
    ±24 h window is gone while the second is still raw. The bundle carried only the raw half
    and called it the trace; now it adds the hours before the first raw reading."""
    client.post("/api/v1/policies", json=POLICY_2026)
    at = T0 + timedelta(hours=6)
    timescale = conn.execute(
        "SELECT bool_or(path = 'timescale') FROM schema_migrations"
    ).fetchone() == (True,)
    if timescale:
        _readings(conn, at)
        conn.execute(
            "CALL refresh_continuous_aggregate('readings_1h', %s, %s)",
            (at - timedelta(days=2), at + timedelta(days=2)),
        )
    else:  # the writer keeps the rollup; the test writes both as the writer would
        _readings(conn, at)
        conn.execute(
            """INSERT INTO readings_1h_store (sensor_id, bucket, temp_min, temp_sum, temp_max, n)
               SELECT sensor_id, date_trunc('hour', ts), min(temp_c), sum(temp_c), max(temp_c),
                      count(*)
               FROM sensor_readings WHERE sensor_id = 'fridge-1'
               GROUP BY sensor_id, date_trunc('hour', ts)"""
        )
    conn.execute("DELETE FROM sensor_readings WHERE sensor_id = 'fridge-1' AND ts < %s", (at,))
    incident = _incident(client, at)
    zf = _bundle(client, incident["id"])
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["sensor_trace"] == "raw+hourly"
    raw = list(csv.DictReader(io.StringIO(zf.read("sensors.csv").decode())))
    first_raw = min(datetime.fromisoformat(r["ts"]) for r in raw)
    assert first_raw == at
    assert len(raw) == manifest["sensor_readings"] == 49  # at .. at + 24 h, every 30 min
    hours = list(csv.DictReader(io.StringIO(zf.read("sensors_hourly.csv").decode())))
    assert len(hours) == manifest["sensor_hours"]
    stamps = [datetime.fromisoformat(h["hour"]) for h in hours]
    # the dropped day, hour by hour, and nothing the raw readings already cover
    assert max(stamps) < first_raw
    assert min(stamps) <= at - timedelta(hours=23)
    assert len(stamps) == len(set(stamps)) >= 24


def test_an_incident_keeps_its_sensor_trace_after_raw_retention(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    """Raw readings go after 400 days on TimescaleDB; a claim can be argued longer. Once the
    incident's window has closed its readings are copied (again while late ones may arrive),
    and the bundle is whole with the raw readings gone."""
    from api.services.incident_traces import LATE_GRACE, keep_incident_traces

    client.post("/api/v1/policies", json=POLICY_2026)
    at = T0 + timedelta(hours=6)
    inside = _readings(conn, at)
    incident = _incident(client, at)

    def kept() -> int:
        row = conn.execute(
            "SELECT count(*) FROM incident_sensor_readings WHERE incident_id = %s",
            (incident["id"],),
        ).fetchone()
        return int(row[0]) if row else 0

    # the window is still open: nothing yet (the app's workers are off in these tests)
    assert keep_incident_traces(conn, now=at + timedelta(hours=23)) == 0
    assert kept() == 0
    closed = at + timedelta(hours=24, minutes=1)
    assert keep_incident_traces(conn, now=closed) == inside
    assert keep_incident_traces(conn, now=closed) == 0  # idempotent
    # a reading the gateway buffered arrives late, inside the window: copied on the next run
    conn.execute(
        "INSERT INTO sensor_readings (sensor_id, ts, temp_c) VALUES ('fridge-1', %s, 9.5)",
        (at + timedelta(minutes=7),),
    )
    assert keep_incident_traces(conn, now=closed + timedelta(days=1)) == 1
    final = conn.execute(
        "SELECT trace_kept_at FROM incidents WHERE id = %s", (incident["id"],)
    ).fetchone()
    assert final == (None,)
    done = closed + LATE_GRACE
    keep_incident_traces(conn, now=done)
    final = conn.execute(
        "SELECT trace_kept_at FROM incidents WHERE id = %s", (incident["id"],)
    ).fetchone()
    assert final == (done,)
    assert kept() == inside + 1

    # retention drops the raw readings; the bundle's trace is whole all the same
    conn.execute("DELETE FROM sensor_readings WHERE sensor_id = 'fridge-1'")
    zf = _bundle(client, incident["id"])
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["sensor_readings"] == inside + 1
    assert manifest["sensor_trace"] == "raw"
    with pytest.raises(psycopg.errors.RaiseException):  # evidence is never deleted
        conn.execute("DELETE FROM incident_sensor_readings")


def test_two_insurers_on_one_canteen_each_read_only_their_own_policy_and_claims(
    client: TestClient, conn: psycopg.Connection[Any], db_url: str, app_settings: ApiSettings
) -> None:
    """A top-up cover: PICC and a rival insure school-001 for 2026. bk_policy_in_force names
    one of them (the newer); PICC must still find its own policy in force, and never read
    the rival's premium, incident or claim."""
    assert client.post("/api/v1/policies", json=POLICY_2026).status_code == 201
    rival = {**POLICY_2026, "insurer": "Other Mutual", "policy_no": "OM-2026-7",
             "premium_cny": "9999.00"}  # fmt: skip
    assert client.post("/api/v1/policies", json=rival).status_code == 201
    at = T0.isoformat()
    incident = client.post(
        "/api/v1/incidents", json={"site_id": "school-001", "occurred_at": at, "kind": "illness"}
    ).json()
    insert_finding(conn, key="f1", notify=False)
    process_findings(conn, now=utcnow() - timedelta(days=1), settings=app_settings)
    row = conn.execute("SELECT id FROM tickets").fetchone()
    assert row is not None
    ticket_id = int(row[0])
    app = create_app(app_settings, common=CommonSettings(database_url=db_url))
    picc = make_user_token(conn, username="picc", role="insurer", insurer="PICC")
    with TestClient(app, headers={"Authorization": f"Bearer {picc}"}) as insurer:
        r = insurer.get("/api/v1/policies/in-force", params={"site_id": "school-001", "at": at})
        assert r.status_code == 200, r.text
        assert r.json()["policy_no"] == "PICC-2026-001"
        r = insurer.get(f"/api/v1/tickets/{ticket_id}/policy")
        assert r.status_code == 200, r.text
        assert r.json()["policy_no"] == "PICC-2026-001"
        r = insurer.get(f"/api/v1/tickets/{ticket_id}")  # the ticket page names the policy too
        assert r.status_code == 200, r.text
        assert r.json()["policy"]["policy_no"] == "PICC-2026-001"
        assert "OM-2026-7" not in r.text
        r = insurer.get(f"/api/v1/incidents/{incident['id']}/bundle.zip")
        assert r.status_code == 200, r.text
        zf = zipfile.ZipFile(io.BytesIO(r.content))
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["policy"]["policy_no"] == "PICC-2026-001"
        text = "".join(zf.read(n).decode() for n in zf.namelist() if n.endswith(".json"))
        assert "OM-2026-7" not in text  # nothing of the rival's
        assert "9999" not in text
    # an incident of 2025, when only the rival insured the canteen: not PICC's to read
    rival_2025 = {**rival, "policy_no": "OM-2025-7", "starts_on": "2025-01-01",
                  "ends_on": "2025-12-31"}  # fmt: skip
    assert client.post("/api/v1/policies", json=rival_2025).status_code == 201
    old = client.post(
        "/api/v1/incidents",
        json={"site_id": "school-001", "occurred_at": "2025-06-01T08:00:00+08:00",
              "kind": "illness", "claim_status": "filed", "amount_cny": "80000"},
    ).json()  # fmt: skip
    with TestClient(app, headers={"Authorization": f"Bearer {picc}"}) as insurer:
        for path in ("", "/claim", "/bundle.zip"):
            assert insurer.get(f"/api/v1/incidents/{old['id']}{path}").status_code == 404, path
        listed = [i["id"] for i in insurer.get("/api/v1/incidents").json()]
        assert listed == [incident["id"]]
        rec = insurer.get("/api/v1/insurance/risk-record", params={"site_id": "school-001"})
        assert [i["id"] for i in rec.json()["incidents"]] == [incident["id"]]
    # the admin still sees both
    assert len(client.get("/api/v1/incidents").json()) == 2


def test_a_claim_recorded_with_its_incident_follows_the_steps_rules(client: TestClient) -> None:
    body = {"site_id": "school-001", "occurred_at": T0.isoformat(), "kind": "illness"}
    r = client.post("/api/v1/incidents", json={**body, "claim_status": "paid"})
    assert r.status_code == 422, r.text  # paid with no amount
    assert "amount_cny" in r.text
    r = client.post("/api/v1/incidents", json={**body, "claim_status": "rejected"})
    assert r.status_code == 422, r.text  # rejected with no reason
    r = client.post("/api/v1/incidents", json={**body, "claim_status": "paid", "amount_cny": "1"})
    assert r.status_code == 201, r.text
    assert client.get("/api/v1/incidents").json()[0]["amount_cny"] == "1.00"
