"""Write paths of inspections, supervision visits and duty reports: clock skew and order,
evidence of a signed notice, who signs, bounds, and the answer for an old record of a busy site."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.timeutil import utcnow
from tests.api.authz_world import World
from tests.support.images import small_png

API = "/api/v1"
AT = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)


@pytest.fixture
def client(db_url: str, settings: ApiSettings, tmp_path: Path) -> Iterator[TestClient]:
    s = settings.model_copy(update={"evidence_dir": tmp_path / "evidence"})
    app = create_app(s, common=CommonSettings(database_url=db_url))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _inspection(**extra: Any) -> dict[str, Any]:
    return {
        "site_id": "site-a1",
        "kind": "routine",
        "inspectors": ["张检查", "刘监管"],
        "started_at": "2026-03-10T09:00:00+08:00",
        "finished_at": "2026-03-10T10:00:00+08:00",
        "items": [{"code": "c1", "result": "fail", "note": "dirty"}],
    } | extra


def test_an_inspection_stamped_ahead_of_the_clock_is_a_422_not_a_500(
    client: TestClient, world: World
) -> None:
    h = world.headers("inspector")
    soon = (utcnow() + timedelta(minutes=2)).isoformat()  # a tablet two minutes fast
    r = client.post(f"{API}/inspections", json=_inspection(started_at=soon, finished_at=None),
                    headers=h)  # fmt: skip
    assert r.status_code == 201, r.text
    later = (utcnow() + timedelta(days=1)).isoformat()
    for body in (_inspection(started_at=later, finished_at=None),
                 _inspection(finished_at="2099-12-31T10:00:00+08:00")):  # fmt: skip
        r = client.post(f"{API}/inspections", json=body, headers=h)
        assert r.status_code == 422, r.text
        assert "is in the future" in r.json()["detail"]


def test_a_follow_up_dated_before_the_inspection_closes_nothing(
    client: TestClient, world: World, conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    h = world.headers("inspector")
    first = client.post(f"{API}/inspections", json=_inspection(), headers=h).json()
    process_findings(conn, now=utcnow(), settings=settings)
    earlier = _inspection(
        started_at="2026-01-01T09:00:00+08:00",
        finished_at="2026-01-01T10:00:00+08:00",
        follow_up_of=first["id"],
        items=[{"code": "c1", "result": "pass"}],
    )
    r = client.post(f"{API}/inspections", json=earlier, headers=h)
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("started_at:")
    (status,) = conn.execute(
        "SELECT status FROM tickets WHERE subject = 'inspection-item:c1'"
    ).fetchone()
    assert status == "open"


def test_a_retried_inspection_is_recorded_once(
    client: TestClient, world: World, conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    """A tablet that lost the answer sends the inspection again: one inspection, one
    occurrence on the ticket; the same start with other results is a conflict."""
    h = world.headers("inspector")
    first = client.post(f"{API}/inspections", json=_inspection(), headers=h)
    assert first.status_code == 201, first.text
    again = client.post(f"{API}/inspections", json=_inspection(), headers=h)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert "replayed" not in again.json()
    process_findings(conn, now=utcnow(), settings=settings)
    (count,) = conn.execute(
        "SELECT count(*) FROM inspections WHERE id = %s OR started_at = %s",
        (first.json()["id"], first.json()["started_at"]),
    ).fetchone()
    assert count == 1
    (occurrences,) = conn.execute(
        "SELECT occurrences FROM tickets WHERE subject = 'inspection-item:c1'"
    ).fetchone()
    assert occurrences == 1
    other = _inspection(items=[{"code": "c1", "result": "pass"}])
    r = client.post(f"{API}/inspections", json=other, headers=h)
    assert r.status_code == 409, r.text
    assert "already recorded" in r.json()["detail"]


def test_a_signed_notice_takes_no_more_evidence(client: TestClient, world: World) -> None:
    h = world.headers("inspector")
    iid = client.post(f"{API}/inspections", json=_inspection(), headers=h).json()["id"]
    assert client.post(f"{API}/inspections/{iid}/sign", json={}, headers=h).status_code == 200
    before = client.get(f"{API}/inspections/{iid}/notice", params={"format": "text"}, headers=h)
    r = client.post(f"{API}/inspections/{iid}/photos", params={"item_code": "c1"},
                    content=small_png(), headers={**h, "Content-Type": "image/png"})  # fmt: skip
    assert r.status_code == 409, r.text
    after = client.get(f"{API}/inspections/{iid}/notice", params={"format": "text"}, headers=h)
    assert after.text == before.text


def test_the_notice_is_signed_by_the_user_or_one_of_the_inspectors(
    client: TestClient, world: World
) -> None:
    h = world.headers("inspector")
    iid = client.post(f"{API}/inspections", json=_inspection(), headers=h).json()["id"]
    r = client.post(f"{API}/inspections/{iid}/sign", json={"signed_by": "王局长"}, headers=h)
    assert r.status_code == 422, r.text
    r = client.post(f"{API}/inspections/{iid}/sign", json={"signed_by": "刘监管"}, headers=h)
    assert r.status_code == 200, r.text


def test_inspector_names_are_bounded(client: TestClient, world: World) -> None:
    h = world.headers("inspector")
    for names in (["x" * 100_001], [""], ["   "]):
        r = client.post(f"{API}/inspections", json=_inspection(inspectors=names), headers=h)
        assert r.status_code == 422, (names[0][:5], r.status_code)
    r = client.post(f"{API}/inspections", json=_inspection(site_id="s" * 10_000), headers=h)
    assert r.status_code == 422


def test_an_older_visit_of_a_busy_site_is_answered_not_a_500(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    for i in range(500):  # 500 visits newer than the one uploaded late
        conn.execute(
            "INSERT INTO supervision_visits (site_id, visited_by, visited_at, checklist) "
            "VALUES ('site-a1', 'reg-a', %s, '[]')",
            (AT - timedelta(hours=i),),
        )
    body = {"site_id": "site-a1", "visited_at": (AT - timedelta(days=60)).isoformat(),
            "checklist": [{"item": "晨检", "ok": True}]}  # fmt: skip
    r = client.post(f"{API}/supervision/visits", json=body, headers=world.headers("regulator"))
    assert r.status_code == 201, r.text
    again = client.post(f"{API}/supervision/visits", json=body, headers=world.headers("regulator"))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == r.json()["id"]


def test_an_older_weekly_review_is_answered_not_a_500(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    monday = date(2026, 3, 2)
    for i in range(1000):
        conn.execute(
            "INSERT INTO weekly_reviews (site_id, week_start, figures, findings, reviewed_by, "
            "reviewed_at) VALUES ('site-a1', %s, '{}', 'f', 'dir-a1', now())",
            (monday - timedelta(weeks=i),),
        )
    week = monday - timedelta(weeks=1000)
    r = client.post(f"{API}/sites/site-a1/weekly-reviews",
                    json={"week_start": week.isoformat(), "findings": "旧周"},
                    headers=world.headers("director"))  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["week_start"] == week.isoformat()


@pytest.mark.parametrize("month", ["1000-01", "1999-12"])
def test_a_monthly_report_outside_2000_2099_is_refused(
    client: TestClient, world: World, month: str
) -> None:
    r = client.post(f"{API}/sites/site-a1/monthly-reports", json={"month": month},
                    headers=world.headers("officer"))  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("body.month")
    listed = client.get(f"{API}/sites/site-a1/monthly-reports", headers=world.headers("officer"))
    assert listed.json() == []
