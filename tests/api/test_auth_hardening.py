"""Session cookie, CSRF, sign-in timing, the last admin, re-enrolment and security headers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth.passwords import verify_password
from api.auth.settings import AuthSettings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from tests.api.conftest import make_user_token

PASSWORD = "correct horse battery"
CROSS_SITE = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}

pytestmark = pytest.mark.usefixtures("registry")


def _app(db_url: str, settings: ApiSettings, **auth: Any) -> Any:
    return create_app(
        settings, common=CommonSettings(database_url=db_url), auth=AuthSettings(**auth)
    )


@pytest.fixture
def client(db_url: str, settings: ApiSettings) -> Iterator[TestClient]:
    with TestClient(_app(db_url, settings)) as c:
        yield c


def _login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def _ticket(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        """INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier, title,
                               opened_at, due_at, last_occurrence_at)
           VALUES ('T-1', 'school-001', 'alarm', 'temp_high', 'fridge-1', 2, 'too warm',
                   now(), now() + interval '3 days', now()) RETURNING id"""
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_session_cookie_is_secure_when_signed_in_over_https(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any]
) -> None:
    make_user_token(conn, username="root", role="admin")
    with TestClient(_app(db_url, settings), base_url="https://bk.example.org") as c:
        cookie = _login(c, "root").headers["set-cookie"]
    assert "Secure" in cookie, cookie


def test_cookie_writes_from_another_origin_are_refused(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    make_user_token(conn, username="root", role="admin")
    make_user_token(conn, username="wang", role="officer", person_id="officer-1")
    ticket = _ticket(conn)
    officer = TestClient(client.app)  # its own cookie jar, the app's running pool
    assert _login(officer, "wang").status_code == 200
    # a cross-site <form method=post>: empty urlencoded body, only the cookie
    r = officer.post(
        f"/api/v1/tickets/{ticket}/acknowledge",
        data={},
        headers={**CROSS_SITE, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 403, r.text
    assert conn.execute("SELECT status FROM tickets WHERE id = %s", (ticket,)).fetchone() == (
        "open",
    )
    # Origin alone (no Fetch Metadata) of another host, and "null", are refused too
    for origin in ("https://evil.example", "null"):
        r = officer.post(f"/api/v1/tickets/{ticket}/acknowledge", headers={"Origin": origin})
        assert r.status_code == 403
    assert _login(client, "root").status_code == 200
    assert client.post("/api/v1/users/wang/disable", headers=CROSS_SITE).status_code == 403
    assert client.post("/api/v1/auth/logout", headers=CROSS_SITE).status_code == 403
    assert conn.execute("SELECT active FROM users WHERE username = 'wang'").fetchone() == (True,)
    # reads with the cookie, and the console's own same-origin writes, still work
    assert client.get("/api/v1/auth/me", headers=CROSS_SITE).status_code == 200
    same = {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    r = client.post("/api/v1/users/wang/disable", headers=same)
    assert r.status_code == 200
    assert r.json()["active"] is False
    # behind a reverse proxy that rewrites Host and forwards the browser's as X-Forwarded-Host
    proxied = {"Origin": "https://bk.example.org", "X-Forwarded-Host": "bk.example.org"}
    assert client.post("/api/v1/users/wang/enable", headers=proxied).status_code == 200
    assert client.post("/api/v1/users/wang/disable", headers=same).status_code == 200
    # a bearer token is not sent by a browser on its own: any origin may use it
    token = _login(TestClient(client.app), "root").json()["access_token"]
    bearer = {**CROSS_SITE, "Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/users/wang/enable", headers=bearer).status_code == 200


def test_a_locked_account_answers_as_slowly_as_an_unknown_one(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    make_user_token(conn, username="wang", role="officer", person_id="officer-1")
    checks: list[str | None] = []

    def counted(password_hash: str | None, password: str) -> bool:
        checks.append(password_hash)
        return verify_password(password_hash, password)

    monkeypatch.setattr("api.auth.users.verify_password", counted)
    with TestClient(_app(db_url, settings, max_failures=3)) as c:
        for _ in range(3):
            assert _login(c, "wang", "guess").status_code == 401
        checks.clear()
        for name in ("wang", "nobody"):  # wang is locked now, nobody never existed
            assert _login(c, name, "guess").status_code == 401
    # each refusal spent one argon2 check: no fast answer names the locked account
    assert len(checks) == 2, checks


def test_the_last_admin_cannot_be_demoted_or_disabled(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    root = {"Authorization": f"Bearer {make_user_token(conn, username='root', role='admin')}"}
    r = client.patch(
        "/api/v1/users/root", json={"role": "regulator", "region_id": "d1"}, headers=root
    )
    assert r.status_code == 403, r.text
    assert r.headers["x-bk-reason"] == "users_last_admin"
    r = client.post("/api/v1/users/root/disable", headers=root)
    assert r.status_code == 403
    assert r.headers["x-bk-reason"] == "users_last_admin"
    assert conn.execute("SELECT role, active FROM users WHERE username = 'root'").fetchone() == (
        "admin",
        True,
    )
    # with a second admin, either may step down
    make_user_token(conn, username="root2", role="admin")
    r = client.patch(
        "/api/v1/users/root", json={"role": "regulator", "region_id": "d1"}, headers=root
    )
    assert r.status_code == 200
    assert r.json()["role"] == "regulator"


def test_re_enrolling_a_box_ends_its_old_token_at_once_even_when_cached(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    def code() -> str:
        r = client.post("/api/v1/enrol/codes", json={"box_id": "box-1"}, headers=admin_headers)
        return str(r.json()["code"])

    old = client.post("/api/v1/enrol", json={"box_id": "box-1", "code": code()}).json()
    headers = {"Authorization": f"Bearer {old['api_token']}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200  # now cached
    assert client.post("/api/v1/enrol", json={"box_id": "box-1", "code": code()}).status_code == 200
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


@pytest.mark.parametrize(
    "path",
    [
        "/console/api/events",  # an included router
        "/console/api/tickets/1/notice",  # an included router
        "/console/export/tickets.csv?status=bogus",  # a 422 of request validation
        "/console/api/config",
    ],
)
def test_console_answers_carry_the_security_headers(
    client: TestClient, admin_headers: dict[str, str], path: str
) -> None:
    for headers in ({}, admin_headers):
        if path.endswith("events") and headers:
            continue  # a stream: its headers are checked on the 401 alone
        r = client.get(path, headers=headers)
        assert "default-src 'self'" in r.headers.get("content-security-policy", ""), (path, r)
        assert r.headers.get("x-content-type-options") == "nosniff"
        assert r.headers.get("x-frame-options") == "DENY"
        assert r.headers.get("referrer-policy") == "no-referrer"


def test_api_answers_are_nosniff_and_keep_a_routes_own_headers(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    for r in (client.get("/api/v1/auth/me", headers=admin_headers), client.get("/api/v1/auth/me")):
        assert r.headers.get("x-content-type-options") == "nosniff"
        assert r.headers.get("referrer-policy") == "no-referrer"
    page = client.get("/api/v1/ack/1.cA.1.x")  # the acknowledge page sets its own CSP
    assert "default-src 'self'" not in page.headers.get("content-security-policy", "")
