"""Deadline overrides and triage modes over HTTP: admins everywhere, regulators in their region."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services.deadlines import resolve_deadline
from api.services.triage import triage_mode
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from tests.api.conftest import make_user_token

pytestmark = pytest.mark.usefixtures("registry")


@pytest.fixture
def client(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any]
) -> Iterator[TestClient]:
    conn.execute(
        "INSERT INTO regions (id, name, parent_id) "
        "VALUES ('d1-town', '镇', 'd1'), ('d2', '他区', NULL)"
    )
    with TestClient(create_app(settings, common=CommonSettings(database_url=db_url))) as c:
        yield c


def _as(conn: psycopg.Connection[Any], name: str, role: str, **anchors: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_user_token(conn, username=name, role=role, **anchors)}"}


def test_deadlines_admin_everywhere_regulator_in_its_region_tree(
    client: TestClient, conn: psycopg.Connection[Any], settings: ApiSettings
) -> None:
    admin = _as(conn, "root", "admin")
    reg = _as(conn, "reg-d1", "regulator", region_id="d1")
    other = _as(conn, "reg-d2", "regulator", region_id="d2")
    officer = _as(conn, "wang", "officer", site_ids=("school-001",))
    url = "/api/v1/settings/deadlines"

    r = client.put(url, headers=reg, json={"region_id": "d1", "rule": "temp_high", "hours": 12})
    assert r.status_code == 200, r.text
    assert resolve_deadline(
        conn, site_id="school-001", rule="temp_high", tier=2, settings=settings
    ) == timedelta(hours=12)
    assert (
        client.put(
            url, headers=reg, json={"region_id": "d1-town", "tier": 1, "hours": 6}
        ).status_code
        == 200
    )
    # not its region, nor everywhere
    assert (
        client.put(url, headers=reg, json={"region_id": "d2", "tier": 1, "hours": 6}).status_code
        == 403
    )
    assert client.put(url, headers=reg, json={"tier": 1, "hours": 6}).status_code == 403
    assert (
        client.put(
            url, headers=officer, json={"region_id": "d1", "tier": 1, "hours": 6}
        ).status_code
        == 403
    )
    assert client.get(url, headers=officer).status_code == 403
    # admin: anywhere; input is checked
    assert client.put(url, headers=admin, json={"tier": 1, "hours": 20}).status_code == 200
    assert (
        client.put(
            url, headers=admin, json={"region_id": "d2", "rule": "pest", "hours": 2}
        ).status_code
        == 200
    )
    assert (
        client.put(
            url, headers=admin, json={"region_id": "nowhere", "tier": 1, "hours": 2}
        ).status_code
        == 422
    )
    assert client.put(url, headers=admin, json={"hours": 2}).status_code == 422
    assert client.put(url, headers=admin, json={"tier": 1, "hours": 0}).status_code == 422

    seen = client.get(url, headers=reg).json()
    assert seen["defaults_h"] == {"1": 24.0, "2": 72.0, "3": 168.0}
    rules = {
        (x["region_id"], x["rule"], x["tier"]): (x["hours"], x["editable"]) for x in seen["rules"]
    }
    assert rules == {
        (None, None, 1): (20.0, False),  # applies to its sites, set above it
        ("d1", "temp_high", None): (12.0, True),
        ("d1-town", None, 1): (6.0, True),
    }  # d2's override is not shown
    names = {(x["region_id"], x["rule"], x["tier"]): x["region_name"] for x in seen["rules"]}
    assert names[("d1-town", None, 1)] == "镇"  # the console names the region, not its id
    assert names[(None, None, 1)] is None
    assert len(client.get(url, headers=other).json()["rules"]) == 2  # global + d2
    assert len(client.get(url, headers=admin).json()["rules"]) == 4
    audited = conn.execute("SELECT count(*) FROM audit_log WHERE action = 'settings.deadline'")
    assert audited.fetchone() == (4,)


def test_triage_admin_everywhere_regulator_for_cameras_at_its_sites(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    admin = _as(conn, "root", "admin")
    reg = _as(conn, "reg-d1", "regulator", region_id="d1")
    other = _as(conn, "reg-d2", "regulator", region_id="d2")
    url = "/api/v1/settings/triage"

    r = client.put(url, headers=reg, json={"camera_id": "cam-1", "mode": "review"})
    assert r.status_code == 200, r.text
    assert triage_mode(conn, camera_id="cam-1", rule="no_mask", default="direct") == "review"
    assert (
        client.put(url, headers=other, json={"camera_id": "cam-1", "mode": "direct"}).status_code
        == 403
    )
    assert client.put(url, headers=reg, json={"rule": "pest", "mode": "review"}).status_code == 403
    assert (
        client.put(url, headers=admin, json={"rule": "pest", "mode": "review"}).status_code == 200
    )
    assert (
        client.put(url, headers=admin, json={"camera_id": "cam-x", "mode": "review"}).status_code
        == 422
    )
    assert client.put(url, headers=admin, json={"mode": "review"}).status_code == 422
    assert triage_mode(conn, camera_id="cam-1", rule="no_mask", default="direct") == "review"

    mine = client.get(url, headers=reg).json()
    assert mine["default"] == "direct"
    assert {(m["camera_id"], m["rule"], m["mode"], m["editable"]) for m in mine["modes"]} == {
        (None, "pest", "review", False),
        ("cam-1", None, "review", True),
    }
    assert [m["camera_id"] for m in client.get(url, headers=other).json()["modes"]] == [None]
