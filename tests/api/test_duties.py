"""The officer's daily duties over HTTP, on real PostgreSQL: daily check, 晨检, 留样, deadlines.

A "no" answer needs a photo (through the evidence checks) and becomes a ticket through the
ticket engine; a symptom takes a staff member off duty; a sample under 125 g or kept under
48 h is refused naming the field; a daily check missed by its deadline opens a ticket whose
escalation reaches the officer, the director and the site's 包保 cadre; each role writes
only its own sites.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services.duties import china_today
from api.services.duty_deadlines import DutySettings, check_deadlines
from api.services.duty_templates import DEFAULT_CHECKLISTS
from api.services.escalation import run_escalation
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.timeutil import utcnow
from tests.api.authz_world import World
from tests.api.conftest import HookServer
from tests.api.loop_support import jpeg_bytes
from tests.support.services import wait_until

API = "/api/v1"
ITEMS = [i.key for i in DEFAULT_CHECKLISTS["school_canteen"]]


@pytest.fixture
def app_settings(settings: ApiSettings, tmp_path: Path) -> ApiSettings:
    return settings.model_copy(update={"evidence_dir": tmp_path / "evidence"})


@pytest.fixture
def client(db_url: str, app_settings: ApiSettings) -> Iterator[TestClient]:
    app = create_app(app_settings, common=CommonSettings(database_url=db_url))
    with TestClient(app) as c:
        yield c


def _keep_duties(c: TestClient, w: World, site: str = "site-a1", **extra: Any) -> None:
    r = c.put(
        f"{API}/sites/{site}/duties",
        json={"business_type": "school_canteen", **extra},
        headers=w.headers("admin"),
    )
    assert r.status_code == 200, r.text


def _photo(c: TestClient, w: World, site: str = "site-a1", role: str = "officer") -> str:
    r = c.post(
        f"{API}/sites/{site}/duty-photos",
        content=jpeg_bytes(seed=3),
        headers={**w.headers(role), "Content-Type": "image/jpeg"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["sha256"])


def _answers(no: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
    no = no or {}
    return [
        {"item": k, "ok": k not in no, **({"photo_sha256": no[k]} if no.get(k) else {})}
        for k in ITEMS
    ]


def test_a_no_with_its_photo_becomes_a_ticket(
    client: TestClient, world: World, conn: psycopg.Connection[Any], app_settings: ApiSettings
) -> None:
    _keep_duties(client, world)
    duties = client.get(f"{API}/sites/site-a1/duties", headers=world.headers("officer")).json()
    assert [i["key"] for i in duties["checklist"]["items"]] == ITEMS
    assert "SAMR Order No. 60" in duties["checklist"]["source"]

    sha = _photo(client, world)
    body = {"answers": _answers({"pests_controlled": sha})}
    r = client.post(
        f"{API}/sites/site-a1/daily-checks", json=body, headers=world.headers("officer")
    )
    assert r.status_code == 201, r.text
    check = r.json()
    assert check["findings"] == 1
    assert check["check_date"] == str(china_today(utcnow()))
    assert process_findings(conn, now=utcnow(), settings=app_settings) >= 1
    row = conn.execute(
        "SELECT t.rule, t.subject, t.title FROM findings f JOIN tickets t ON t.id = f.ticket_id "
        "WHERE f.finding_key = %s",
        (f"daily_check:{check['id']}:pests_controlled",),
    ).fetchone()
    assert row is not None
    assert row[0] == "daily_check_no"
    assert row[1] == "pests_controlled"
    assert "日管控检查不合格" in row[2]
    photo = client.get(f"{API}/sites/site-a1/duty-photos/{sha}", headers=world.headers("regulator"))
    assert photo.status_code == 200
    assert photo.headers["content-type"] == "image/jpeg"
    assert photo.content == jpeg_bytes(seed=3)
    hidden = client.get(f"{API}/sites/site-a1/duty-photos/{sha}", headers=world.headers("insurer"))
    assert hidden.status_code == 404

    again = client.post(
        f"{API}/sites/site-a1/daily-checks", json=body, headers=world.headers("director")
    )
    assert again.status_code == 409
    assert "check_date" in again.json()["detail"]


def test_a_no_without_a_photo_or_with_anothers_photo_is_refused(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    _keep_duties(client, world)
    _keep_duties(client, world, "site-a2")
    url = f"{API}/sites/site-a1/daily-checks"
    r = client.post(
        url, json={"answers": _answers({"storage_ok": None})}, headers=world.headers("officer")
    )
    assert r.status_code == 422
    assert "photo_sha256" in r.text
    other = _photo(client, world, "site-a2", role="regulator")  # a photo of another site
    r = client.post(
        url, json={"answers": _answers({"storage_ok": other})}, headers=world.headers("officer")
    )
    assert r.status_code == 422
    assert "answers.3.photo_sha256" in r.json()["detail"]
    r = client.post(url, json={"answers": _answers()[:-1]}, headers=world.headers("officer"))
    assert r.status_code == 422
    assert "accompanied_meal" in r.json()["detail"]
    assert conn.execute("SELECT count(*) FROM daily_checks").fetchone() == (0,)


def test_each_role_writes_only_its_own_sites(client: TestClient, world: World) -> None:
    _keep_duties(client, world)
    _keep_duties(client, world, "site-b1")
    body = {"answers": _answers()}
    r = client.post(
        f"{API}/sites/site-b1/daily-checks", json=body, headers=world.headers("officer")
    )
    assert r.status_code == 404
    assert "site-b1" in r.json()["detail"]
    r = client.post(f"{API}/sites/site-b1/duty-photos", content=jpeg_bytes(),
                    headers={**world.headers("officer"), "Content-Type": "image/jpeg"})  # fmt: skip
    assert r.status_code == 404
    r = client.put(f"{API}/sites/site-a1/duties", json={"business_type": "restaurant"},
                   headers=world.headers("officer"))  # fmt: skip
    assert r.status_code == 403  # the director, a regulator or an admin sets the duties
    r = client.post(
        f"{API}/sites/site-a2/daily-checks", json=body, headers=world.headers("insurer")
    )
    assert r.status_code == 403
    r = client.post(f"{API}/sites/site-a1/daily-checks", json=body, headers=world.headers("device"))
    assert r.status_code == 403
    r = client.get(f"{API}/sites/site-b1/daily-checks", headers=world.headers("regulator"))
    assert r.status_code == 404  # dist-b is another regulator's
    ok = client.post(
        f"{API}/sites/site-a1/daily-checks", json=body, headers=world.headers("officer")
    )
    assert ok.status_code == 201, ok.text
    listed = client.get(f"{API}/sites/site-a1/daily-checks", headers=world.headers("regulator"))
    assert [c["id"] for c in listed.json()] == [ok.json()["id"]]


def test_region_checklist_overrides_the_default(client: TestClient, world: World) -> None:
    _keep_duties(client, world)
    body = {
        "region_id": "dist-a",
        "business_type": "school_canteen",
        "source": "District A daily control form 2026",
        "items": [{"key": "hands_washed", "zh": "洗手消毒", "en": "hands washed", "tier": 3}],
    }
    r = client.put(f"{API}/duties/checklists", json={**body, "region_id": "dist-b"},
                   headers=world.headers("regulator"))  # fmt: skip
    assert r.status_code == 403
    r = client.put(f"{API}/duties/checklists", json=body, headers=world.headers("regulator"))
    assert r.status_code == 200, r.text
    got = client.get(f"{API}/sites/site-a1/duties", headers=world.headers("officer")).json()
    assert got["checklist"]["region_id"] == "dist-a"
    assert [i["key"] for i in got["checklist"]["items"]] == ["hands_washed"]


def test_a_symptom_takes_staff_off_duty_for_the_day(client: TestClient, world: World) -> None:
    body = {
        "staff": [
            {"staff_name": "张厨师", "temperature_c": "36.6"},
            {"staff_name": "李帮厨", "symptoms": ["hand_wound"], "note": "左手食指割伤"},
            {"staff_name": "王面点", "temperature_c": "37.8"},
        ]
    }
    url = f"{API}/sites/site-a1/health-checks"
    r = client.post(url, json=body, headers=world.headers("officer"))
    assert r.status_code == 201, r.text
    duty = {c["staff_name"]: (c["on_duty"], c["symptoms"]) for c in r.json()}
    assert duty == {
        "张厨师": (True, []),
        "李帮厨": (False, ["hand_wound"]),
        "王面点": (False, ["fever"]),
    }
    off = client.get(url, params={"off_duty": "true"}, headers=world.headers("director")).json()
    assert sorted(c["staff_name"] for c in off) == ["李帮厨", "王面点"]
    bad = client.post(url, json={"staff": [{"staff_name": "赵", "symptoms": ["sneezing"]}]},
                      headers=world.headers("officer"))  # fmt: skip
    assert bad.status_code == 422
    assert "staff.0.symptoms" in bad.text
    twice = client.post(
        url, json={"staff": [{"staff_name": "张厨师"}]}, headers=world.headers("officer")
    )
    assert twice.status_code == 409
    assert "staff.0.staff_name" in twice.json()["detail"]


def test_samples_under_125_g_or_kept_under_48_h_are_refused(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    conn.execute(
        "INSERT INTO sensors (id, site_id, name, profile, params) "
        "VALUES ('sample-a1', 'site-a1', '留样柜', 'sample_fridge', '{}')"
    )
    now = utcnow()
    body = {
        "meal_date": str(china_today(now)),
        "meal": "lunch",
        "stored_at": (now - timedelta(minutes=5)).isoformat(),
        "sensor_id": "sample-a1",
        "dishes": [{"dish": "番茄炒蛋", "weight_g": 150}, {"dish": "米饭", "weight_g": 125}],
    }
    url = f"{API}/sites/site-a1/food-samples"
    light = {
        **body,
        "dishes": [{"dish": "番茄炒蛋", "weight_g": 150}, {"dish": "米饭", "weight_g": 120}],
    }
    r = client.post(url, json=light, headers=world.headers("officer"))
    assert r.status_code == 422
    assert "dishes.1.weight_g" in r.text
    r = client.post(url, json={**body, "keep_hours": 24}, headers=world.headers("officer"))
    assert r.status_code == 422
    assert "keep_hours" in r.text
    r = client.post(
        url, json={**body, "sensor_id": "fridge-site-a1"}, headers=world.headers("officer")
    )
    assert r.status_code == 422
    assert "sensor_id" in r.json()["detail"]
    far = {**body, "meal_date": str(china_today(now) - timedelta(days=3))}  # a typo'd date
    r = client.post(url, json=far, headers=world.headers("officer"))
    assert r.status_code == 422
    assert r.json()["detail"].startswith("meal_date: ")
    assert conn.execute("SELECT count(*) FROM food_samples").fetchone() == (0,)
    r = client.post(url, json=body, headers=world.headers("officer"))
    assert r.status_code == 201, r.text
    stored = r.json()
    assert [s["dish"] for s in stored] == ["番茄炒蛋", "米饭"]
    kept = [s["keep_until"] for s in stored]
    assert all(
        k.startswith(str((now - timedelta(minutes=5) + timedelta(hours=48)).date())) for k in kept
    )


def test_a_missed_daily_check_escalates_to_officer_director_and_cadre(
    client: TestClient, world: World, conn: psycopg.Connection[Any], app_settings: ApiSettings
) -> None:
    conn.execute(
        """INSERT INTO people (id, name) VALUES ('p-cadre-a1', 'Cadre A1');
           INSERT INTO site_people (site_id, person_id, role)
           VALUES ('site-a1', 'p-cadre-a1', 'regulator');
           INSERT INTO person_channels (person_id, kind, address) VALUES
           ('p-officer-a1', 'webhook', 'http://127.0.0.1:9/officer'),
           ('p-director-a1', 'webhook', 'http://127.0.0.1:9/director'),
           ('p-cadre-a1', 'webhook', 'http://127.0.0.1:9/cadre')"""
    )
    now = utcnow()
    today = china_today(now)
    _keep_duties(client, world, since=str(today - timedelta(days=1)), deadline_local="00:00")
    _keep_duties(
        client, world, "site-a2", since=str(today - timedelta(days=1)), deadline_local="00:00"
    )
    ok = client.post(
        f"{API}/sites/site-a2/daily-checks",
        json={"answers": _answers(), "check_date": str(today - timedelta(days=1))},
        headers=world.headers("regulator"),
    )
    assert ok.status_code == 201, ok.text
    duty = DutySettings()
    # site-a1 missed yesterday and today; site-a2 missed only today
    assert check_deadlines(conn, now=now, settings=duty) == 3
    assert check_deadlines(conn, now=now, settings=duty) == 0  # idempotent
    process_findings(conn, now=now, settings=app_settings)
    tickets = conn.execute(
        "SELECT id FROM tickets WHERE site_id = 'site-a1' AND rule = 'daily_check_missed'"
    ).fetchall()
    assert len(tickets) == 1  # one open ticket; the second day is an occurrence of it
    ticket_id = tickets[0][0]
    later = now + app_settings.deadline(2) + timedelta(hours=app_settings.regulator_after_h + 1)
    assert run_escalation(conn, now=later, settings=app_settings) >= 3
    heard = {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT person_id FROM notifications WHERE ticket_id = %s", (ticket_id,)
        )
    }
    assert {"p-officer-a1", "p-director-a1", "p-cadre-a1"} <= heard
    today_rows = client.get(f"{API}/duties/today", headers=world.headers("regulator")).json()
    assert [(r["site_id"], r["done"], r["overdue"]) for r in today_rows] == [
        ("site-a1", False, True),
        ("site-a2", False, True),
    ]
    mine = client.get(f"{API}/duties/today", headers=world.headers("officer")).json()
    assert [r["site_id"] for r in mine] == ["site-a1"]


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Europe/Berlin"])
def test_a_daily_check_deadline_is_in_the_regions_time_zone(
    client: TestClient,
    world: World,
    conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    zone: str,
) -> None:
    monkeypatch.setenv("BK_TIME_ZONE", zone)  # read by the API and the deadline worker alike
    now = utcnow()
    today = china_today(now)
    yesterday = today - timedelta(days=1)
    _keep_duties(client, world, since=str(yesterday), deadline_local="09:30")
    assert check_deadlines(conn, now=now, settings=DutySettings()) >= 1  # yesterday's, at least
    [(due,)] = conn.execute(
        "SELECT occurred_at FROM findings WHERE finding_key = %s",
        (f"daily_check_missed:site-a1:{yesterday}",),
    ).fetchall()
    local = due.astimezone(ZoneInfo(zone))
    assert (local.date(), local.strftime("%H:%M")) == (yesterday, "09:30")
    [row] = client.get(f"{API}/duties/today", headers=world.headers("officer")).json()
    deadline = datetime.fromisoformat(row["deadline_at"]).astimezone(ZoneInfo(zone))
    assert (str(deadline.date()), deadline.strftime("%H:%M")) == (row["day"], "09:30")
    assert row["day"] == str(today)


def test_weekly_review_is_the_directors_with_the_weeks_figures(
    client: TestClient, world: World
) -> None:
    today = china_today(utcnow())
    monday = today - timedelta(days=today.isoweekday() - 1)
    _keep_duties(client, world)
    client.post(
        f"{API}/sites/site-a1/daily-checks",
        json={"answers": _answers(), "check_date": str(monday)},
        headers=world.headers("officer"),
    )
    body = {"week_start": str(monday), "findings": "冷库门封条老化", "measures": "本周更换"}
    url = f"{API}/sites/site-a1/weekly-reviews"
    assert client.post(url, json=body, headers=world.headers("officer")).status_code == 403
    tuesday = client.post(
        url, json={**body, "week_start": str(monday + timedelta(days=1))},
        headers=world.headers("director"),
    )  # fmt: skip
    assert tuesday.status_code == 422
    assert "week_start" in tuesday.text
    r = client.post(url, json=body, headers=world.headers("director"))
    assert r.status_code == 201, r.text
    assert r.json()["figures"]["daily_checks_done"] == 1
    assert client.post(url, json=body, headers=world.headers("director")).status_code == 409


def test_monthly_report_is_generated_edited_then_signed_and_final(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    month = china_today(utcnow()).strftime("%Y-%m")
    _keep_duties(client, world)
    sha = _photo(client, world)
    client.post(
        f"{API}/sites/site-a1/daily-checks",
        json={"answers": _answers({"waste_covered": sha})},
        headers=world.headers("officer"),
    )
    url = f"{API}/sites/site-a1/monthly-reports"
    r = client.post(url, json={"month": month}, headers=world.headers("officer"))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["figures"]["daily_checks_done"] == 1
    assert report["figures"]["daily_check_no_answers"] == 1
    assert "日管控: 1/" in report["body"]
    assert report["signed_at"] is None
    bad = client.post(url, json={"month": "2026-13"}, headers=world.headers("officer"))
    assert bad.status_code == 422
    assert "month" in bad.text
    text = "本月整改 1 项，已完成。"
    edited = client.patch(
        url, json={"month": month, "body": text}, headers=world.headers("officer")
    )
    assert edited.status_code == 200, edited.text
    again = client.post(url, json={"month": month}, headers=world.headers("director")).json()
    assert again["body"] == text  # regenerating keeps the edited text
    sign = f"{url}/sign"
    officer = world.headers("officer")
    assert client.post(sign, json={"month": month}, headers=officer).status_code == 403
    signed = client.post(sign, json={"month": month}, headers=world.headers("director"))
    assert signed.status_code == 200, signed.text
    assert signed.json()["signed_by"] == "dir-a1"
    refused = [
        client.patch(url, json={"month": month, "body": "x"}, headers=officer),
        client.post(url, json={"month": month}, headers=officer),
        client.post(sign, json={"month": month}, headers=world.headers("director")),
    ]
    for r in refused:
        assert r.status_code == 409
        assert "month" in r.json()["detail"]
    with pytest.raises(psycopg.errors.RaiseException):
        conn.execute("UPDATE monthly_reports SET body = 'changed'")
    listed = client.get(url, headers=world.headers("insurer"))
    assert listed.status_code == 404  # site-a1 is not the insurer's


def test_the_api_workers_turn_a_missed_check_into_the_officers_webhook(
    db_url: str,
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
    registry: None,
    hook: HookServer,
) -> None:
    """End to end with the real workers: deadline worker → finding → engine → dispatcher."""
    yesterday = china_today(utcnow()) - timedelta(days=1)
    conn.execute(
        "INSERT INTO duty_sites (site_id, business_type, deadline_local, since) "
        "VALUES ('school-001', 'school_canteen', '00:00', %s)",
        (yesterday,),
    )
    live = settings.model_copy(update={"workers_enabled": True})
    app = create_app(live, common=CommonSettings(database_url=db_url))
    with TestClient(app):
        assert app.state.workers.wait_connected(10)
        wait_until(
            lambda: any(r.body.get("subject") == "daily_check" for r in hook.requests),
            timeout=10.0,
            what="the officer's webhook about the missed daily check",
        )
    row = conn.execute(
        "SELECT count(*), min(title), min(details->>'subject_name') FROM tickets "
        "WHERE site_id = 'school-001' AND rule = 'daily_check_missed'"
    ).fetchone()
    assert row is not None
    assert row[0] == 1
    # Titled in words: the rule alone, no subject code (the duty is not a device).
    assert row[1] == "日管控未按时完成 daily control check not done by its deadline"
    assert row[2] == "日管控"  # what the ticket page names as its subject
