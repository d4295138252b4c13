"""Token revocation (API and CLI) and the per-client sign-in rate limit."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth.settings import AuthSettings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from tests.api.conftest import make_user_token
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("registry")
PASSWORD = "correct horse battery"


def _client(db_url: str, settings: ApiSettings, host: str = "203.0.113.7", **auth: Any) -> Any:
    app = create_app(
        settings, common=CommonSettings(database_url=db_url), auth=AuthSettings(**auth)
    )
    return TestClient(app, client=(host, 50000))


def _login(client: TestClient, username: str, password: str) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def test_one_address_spraying_passwords_is_rate_limited(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any]
) -> None:
    make_user_token(conn, username="wang", role="officer", person_id="officer-1")
    auth = {"client_max_failures": 4, "client_window_s": 600, "max_failures": 100}
    with _client(db_url, settings, **auth) as attacker:
        for name in ("wang", "li", "zhang", "zhao"):  # different accounts: no user lock
            assert _login(attacker, name, "guess").status_code == 401
        limited = _login(attacker, "wang", PASSWORD)  # even the right password now
        assert limited.status_code == 429
        retry = int(limited.headers["retry-after"])
        assert 0 < retry <= 601
        assert "try again later" in limited.json()["detail"]
    with _client(db_url, settings, host="198.51.100.9", **auth) as other:
        assert _login(other, "wang", PASSWORD).status_code == 200  # another address is not
    reasons = conn.execute(
        """SELECT data->>'client', data->>'reason' FROM audit_log
           WHERE action = 'auth.login_failed' ORDER BY id"""
    ).fetchall()
    assert reasons[-1] == ("203.0.113.7", "client rate limited")
    assert len(reasons) == 5
    # the window passes: the address may try again
    conn.execute("UPDATE audit_log SET at = at - interval '11 minutes'")
    with _client(db_url, settings, **auth) as attacker:
        assert _login(attacker, "wang", PASSWORD).status_code == 200


def test_admin_lists_and_revokes_tokens_over_http(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any], admin_headers: dict[str, str]
) -> None:
    officer = make_user_token(conn, username="wang", role="officer", person_id="officer-1")
    second = make_user_token(conn, username="li", role="officer", person_id="officer-1")
    third = make_user_token(conn, username="li-2", role="officer", person_id="officer-1")
    with _client(db_url, settings) as client:
        as_officer = {"Authorization": f"Bearer {officer}"}
        assert client.get("/api/v1/tickets", headers=as_officer).status_code == 200  # cached
        listing = client.get("/api/v1/users/tokens", params={"username": "wang"},
                             headers=admin_headers).json()  # fmt: skip
        assert listing["count"] == 1
        (info,) = listing["data"]
        assert (info["username"], info["kind"], info["revoked_at"]) == ("wang", "session", None)
        assert officer not in str(listing)  # never the token itself
        r = client.post(f"/api/v1/users/tokens/{info['id']}/revoke", headers=admin_headers)
        assert r.json() == {"revoked": 1}
        assert client.get("/api/v1/tickets", headers=as_officer).status_code == 401  # at once
        again = client.post(f"/api/v1/users/tokens/{info['id']}/revoke", headers=admin_headers)
        assert again.json() == {"revoked": 0}
        missing = client.post("/api/v1/users/tokens/999999/revoke", headers=admin_headers)
        assert missing.status_code == 404
        r = client.post("/api/v1/users/li/tokens/revoke", headers=admin_headers)
        assert r.json() == {"revoked": 1}
        assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {second}"}
                          ).status_code == 401  # fmt: skip
        assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {third}"}
                          ).status_code == 200  # fmt: skip
        assert client.post("/api/v1/users/nobody/tokens/revoke",
                           headers=admin_headers).status_code == 404  # fmt: skip
    actions = conn.execute(
        "SELECT target FROM audit_log WHERE action = 'auth.revoke' ORDER BY id"
    ).fetchall()
    assert actions == [(f"token:{info['id']}",), ("user:li",)]


def test_users_cli_lists_and_revokes_tokens(
    cli_env: dict[str, str], conn: psycopg.Connection[Any]
) -> None:
    created = run_cli("users", "create-device", "--name", "box-9", "--site", "school-001",
                      env=cli_env)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "expires 20" in created.stderr  # device tokens expire
    token_id = conn.execute("SELECT id FROM api_tokens WHERE name = 'box-9'").fetchone()
    assert token_id is not None
    listing = run_cli("users", "tokens", "--user", "box-9", env=cli_env)
    assert f"{token_id[0]:>6} box-9" in listing.stdout
    assert created.stdout.strip() not in listing.stdout
    revoked = run_cli("users", "revoke-token", str(token_id[0]), env=cli_env)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in revoked.stdout
    assert run_cli("users", "revoke-token", "999999", env=cli_env).returncode == 1
    every = run_cli("users", "revoke-tokens", "box-9", env=cli_env)
    assert "0 token(s) of box-9 revoked" in every.stdout
    listing = run_cli("users", "tokens", env=cli_env)
    assert "revoked" in listing.stdout
