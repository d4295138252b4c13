"""Edge-box enrolment over HTTP: a one-time code becomes the box's token and broker account."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.services.enrol import code_hash, create_code, new_code, normalise_code
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.timeutil import utcnow
from brightkitchen.mqtt_auth import verify_password

pytestmark = pytest.mark.usefixtures("registry")


@pytest.fixture
def client(db_url: str, settings: ApiSettings) -> Iterator[TestClient]:
    app = create_app(settings, common=CommonSettings(database_url=db_url))
    with TestClient(app) as c:
        yield c


def _code(client: TestClient, headers: dict[str, str], box_id: str = "box-1") -> str:
    r = client.post("/api/v1/enrol/codes", json={"box_id": box_id}, headers=headers)
    assert r.status_code == 201, r.text
    assert r.json()["site_id"] == "school-001"
    return str(r.json()["code"])


def test_a_code_is_traded_once_for_a_working_token_and_broker_account(
    client: TestClient, admin_headers: dict[str, str], conn: psycopg.Connection[Any]
) -> None:
    code = _code(client, admin_headers)
    assert len(code) == 19
    assert code.count("-") == 3
    stored = conn.execute("SELECT code_hash FROM enrolment_codes").fetchall()
    assert stored == [(code_hash(code),)]  # only the hash is kept
    # typed from paper: lower case, spaces instead of dashes
    r = client.post(
        "/api/v1/enrol", json={"box_id": "box-1", "code": code.lower().replace("-", " ")}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["box_id"] == "box-1"
    assert body["site_id"] == "school-001"
    assert body["mqtt_username"] == "edge.box-1"
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['api_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "device"
    row = conn.execute(
        "SELECT password_hash FROM mqtt_accounts"
        " WHERE username = 'edge.box-1' AND revoked_at IS NULL"
    ).fetchone()
    assert row is not None
    assert verify_password(row[0], body["mqtt_password"])
    used = conn.execute("SELECT used_at, used_from FROM enrolment_codes").fetchone()
    assert used is not None
    assert used[0] is not None
    assert used[1]
    again = client.post("/api/v1/enrol", json={"box_id": "box-1", "code": code})
    assert again.status_code == 403
    assert "not accepted" in again.json()["detail"]


def test_refusals_spend_nothing_and_say_nothing(
    client: TestClient, admin_headers: dict[str, str], conn: psycopg.Connection[Any]
) -> None:
    code = _code(client, admin_headers)
    answers = [
        client.post("/api/v1/enrol", json={"box_id": "box-other", "code": code}),
        client.post("/api/v1/enrol", json={"box_id": "box-1", "code": new_code()}),
    ]
    assert {r.status_code for r in answers} == {403}
    assert len({r.json()["detail"] for r in answers}) == 1  # no hint which check failed
    assert client.post("/api/v1/enrol", json={"box_id": "box-1", "code": code}).status_code == 200
    expired = create_code(conn, box_id="box-1", now=utcnow() - timedelta(hours=2), actor="t",
                          ttl=timedelta(hours=1))  # fmt: skip
    r = client.post("/api/v1/enrol", json={"box_id": "box-1", "code": expired.code})
    assert r.status_code == 403


def test_re_enrolling_a_replaced_box_revokes_the_old_credentials(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    first = client.post(
        "/api/v1/enrol", json={"box_id": "box-1", "code": _code(client, admin_headers)}
    )
    second = client.post(
        "/api/v1/enrol", json={"box_id": "box-1", "code": _code(client, admin_headers)}
    )
    assert first.status_code == second.status_code == 200
    old, new = first.json(), second.json()
    assert old["mqtt_password"] != new["mqtt_password"]
    auth = "Authorization"
    assert (
        client.get("/api/v1/auth/me", headers={auth: f"Bearer {old['api_token']}"}).status_code
        == 401
    )
    assert (
        client.get("/api/v1/auth/me", headers={auth: f"Bearer {new['api_token']}"}).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [({"box_id": "no-such-box"}, "box_id"), ({"box_id": "box-1", "ttl_h": 0.01}, "ttl_h")],
)
def test_codes_need_a_registered_box_and_a_sane_lifetime(
    client: TestClient, admin_headers: dict[str, str], body: dict[str, Any], field: str
) -> None:
    r = client.post("/api/v1/enrol/codes", json=body, headers=admin_headers)
    assert r.status_code == 422
    assert field in r.text


def test_only_admins_create_codes(client: TestClient, conn: psycopg.Connection[Any]) -> None:
    from tests.api.conftest import make_user_token

    token = make_user_token(conn, username="off-1", role="officer", site_ids=("school-001",))
    r = client.post("/api/v1/enrol/codes", json={"box_id": "box-1"},
                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert r.status_code == 403
    assert client.post("/api/v1/enrol/codes", json={"box_id": "box-1"}).status_code == 401


def test_code_alphabet_reads_look_alikes_as_digits() -> None:
    assert normalise_code("abcd-oil0 ") == "ABCD0110"
    assert code_hash("7kq2-m9xd") == code_hash("7KQ2M9XD")
