"""Sign-in, tokens, cookies, lockout, disabled users, the audit log and the users CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth.passwords import token_hash
from api.auth.settings import AuthSettings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.timeutil import utcnow
from tests.api.conftest import make_user_token
from tests.conftest import run_cli

PASSWORD = "correct horse battery"

pytestmark = pytest.mark.usefixtures("registry")


@pytest.fixture
def client(db_url: str, settings: ApiSettings) -> Iterator[TestClient]:
    auth = AuthSettings(max_failures=3, lock_s=300, session_ttl_h=1)
    app = create_app(settings, common=CommonSettings(database_url=db_url), auth=auth)
    with TestClient(app) as c:
        yield c


@pytest.fixture
def officer(conn: psycopg.Connection[Any]) -> str:
    make_user_token(conn, username="wang", role="officer", person_id="officer-1")
    return "wang"


def _login(client: TestClient, username: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def _audit(conn: psycopg.Connection[Any], action: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT actor, target, data->>'reason' FROM audit_log WHERE action = %s ORDER BY id",
        (action,),
    ).fetchall()


def test_login_gives_token_and_cookie_and_me(
    client: TestClient, officer: str, conn: psycopg.Connection[Any]
) -> None:
    r = _login(client, officer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["role"] == "officer"
    assert body["user"]["site_ids"] == ["school-001"]  # officer-1 is the officer there
    cookie = r.headers["set-cookie"]
    assert "bk_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
    # the raw token is never stored, only its sha256
    stored = conn.execute("SELECT token_hash, kind FROM api_tokens").fetchall()
    assert (token_hash(body["access_token"]), "session") in stored
    assert all(body["access_token"] not in row[0] for row in stored)

    fresh = TestClient(client.app)
    me = fresh.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    ).json()
    assert (me["username"], me["read_only"], me["all_sites"]) == ("wang", False, False)
    # the cookie alone (the console) works too
    assert client.get("/api/v1/auth/me").json()["username"] == "wang"
    assert _audit(conn, "auth.login") == [("wang", "user:wang", None)]


def test_bad_password_and_unknown_user_answer_alike(
    client: TestClient, officer: str, conn: psycopg.Connection[Any]
) -> None:
    bad = _login(client, officer, "wrong password")
    unknown = _login(client, "nobody", "wrong password")
    assert bad.status_code == unknown.status_code == 401
    assert bad.json() == unknown.json() == {"detail": "invalid username or password"}
    assert bad.headers["www-authenticate"] == "Bearer"
    assert "set-cookie" not in bad.headers
    assert _audit(conn, "auth.login_failed") == [
        ("wang", "user:wang", "bad password"),
        ("nobody", "user:nobody", "unknown user"),
    ]


def test_lockout_after_repeated_failures(
    client: TestClient, officer: str, conn: psycopg.Connection[Any]
) -> None:
    for _ in range(3):  # max_failures=3
        assert _login(client, officer, "nope").status_code == 401
    locked = _login(client, officer)  # the right password no longer helps
    assert locked.status_code == 401
    reasons = [r[2] for r in _audit(conn, "auth.login_failed")]
    assert reasons == ["bad password", "bad password", "bad password; locked", "locked"]
    # the lock ends
    conn.execute("UPDATE users SET locked_until = now() - interval '1 s' WHERE username = 'wang'")
    assert _login(client, officer).status_code == 200
    row = conn.execute("SELECT failed_logins FROM users WHERE username = 'wang'").fetchone()
    assert row == (0,)


def test_a_success_resets_the_failure_count(
    client: TestClient, officer: str, conn: psycopg.Connection[Any]
) -> None:
    for _ in range(2):
        _login(client, officer, "nope")
    assert _login(client, officer).status_code == 200
    for _ in range(2):
        _login(client, officer, "nope")
    assert _login(client, officer).status_code == 200  # never three in a row


def test_disabled_user_cannot_sign_in_and_loses_its_tokens(
    client: TestClient, conn: psycopg.Connection[Any], admin_headers: dict[str, str], officer: str
) -> None:
    token = _login(client, officer).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/tickets", headers=headers).status_code == 200
    r = client.post("/api/v1/users/wang/disable", headers=admin_headers)
    assert r.status_code == 200
    assert r.json()["active"] is False
    assert client.get("/api/v1/tickets", headers=headers).status_code == 401
    assert _login(client, officer).status_code == 401
    assert _audit(conn, "auth.login_failed")[-1][2] == "disabled"
    assert [a[1] for a in _audit(conn, "user.disable")] == ["user:wang"]
    assert client.post("/api/v1/users/ghost/disable", headers=admin_headers).status_code == 404


def test_expired_and_revoked_tokens_are_refused(
    client: TestClient, conn: psycopg.Connection[Any], officer: str
) -> None:
    token = _login(client, officer).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    fresh = TestClient(client.app)  # no cookie jar: the header only
    conn.execute(
        "UPDATE api_tokens SET expires_at = now() - interval '1 s' WHERE token_hash = %s",
        (token_hash(token),),
    )
    expired = fresh.get("/api/v1/auth/me", headers=headers)
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == "Bearer"

    token2 = _login(client, officer).json()["access_token"]
    headers2 = {"Authorization": f"Bearer {token2}"}
    out = client.post("/api/v1/auth/logout", headers=headers2)
    assert out.status_code == 204
    assert 'bk_session=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
    assert fresh.get("/api/v1/auth/me", headers=headers2).status_code == 401
    revoked = conn.execute(
        "SELECT revoked_at IS NOT NULL FROM api_tokens WHERE token_hash = %s", (token_hash(token2),)
    ).fetchone()
    assert revoked == (True,)
    assert len(_audit(conn, "auth.logout")) == 1


def test_device_token_knows_itself_but_reads_nothing_and_cannot_sign_in(
    client: TestClient, conn: psycopg.Connection[Any]
) -> None:
    from api.auth.users import create_device

    issued = create_device(conn, name="box-1-dev", site_ids=("school-002",), now=utcnow())
    headers = {"Authorization": f"Bearer {issued.token}"}
    me = client.get("/api/v1/auth/me", headers=headers).json()
    assert (me["role"], me["site_ids"], me["read_only"]) == ("device", ["school-002"], True)
    for path in ("/api/v1/sites", "/api/v1/tickets", "/api/v1/notifications", "/api/v1/alarms"):
        assert client.get(path, headers=headers).status_code == 403, path  # not the ledger
    assert client.post("/api/v1/alarms/1/acknowledge", headers=headers, json={}).status_code == 403
    assert client.get("/api/v1/users", headers=headers).status_code == 403
    assert _login(client, "box-1-dev", "").status_code == 422  # no password at all
    assert _login(client, "box-1-dev", "anything").status_code == 401


def test_acknowledge_is_audited_with_the_signed_in_user(
    client: TestClient, conn: psycopg.Connection[Any], officer: str
) -> None:
    from tests.api.conftest import insert_alarm

    aid = insert_alarm(conn, key="k1")
    token = _login(client, officer).json()["access_token"]
    r = client.post(
        f"/api/v1/alarms/{aid}/acknowledge",
        json={"note": "门关好"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200
    assert r.json()["acknowledged_by"] == "officer-1"  # the user's person
    rows = conn.execute(
        "SELECT actor, target, data->>'note' FROM audit_log WHERE action = 'alarm.acknowledge'"
    ).fetchall()
    assert rows == [("wang", f"alarm:{aid}", "门关好")]


def test_admin_creates_users_and_devices_over_http(
    client: TestClient, conn: psycopg.Connection[Any], admin_headers: dict[str, str]
) -> None:
    r = client.post(
        "/api/v1/users",
        headers=admin_headers,
        json={
            "username": "liu",
            "password": "regulator pw",
            "role": "regulator",
            "region_id": "d1",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["role"] == "regulator"
    dup = client.post(
        "/api/v1/users",
        headers=admin_headers,
        json={
            "username": "liu",
            "password": "regulator pw",
            "role": "regulator",
            "region_id": "d1",
        },
    )
    assert dup.status_code == 422
    bad_region = client.post(
        "/api/v1/users",
        headers=admin_headers,
        json={"username": "x", "password": "long enough", "role": "regulator", "region_id": "zz"},
    )
    assert bad_region.status_code == 422
    login = _login(client, "liu", "regulator pw").json()
    assert login["user"]["site_ids"] == ["school-001", "school-002"]
    dev = client.post(
        "/api/v1/users/devices",
        headers=admin_headers,
        json={"name": "gw-1", "site_ids": ["school-001"]},
    )
    assert dev.status_code == 201
    assert dev.json()["token"].startswith("bk_")
    names = [
        u["username"] for u in client.get("/api/v1/users", headers=admin_headers).json()["data"]
    ]
    assert names == ["admin", "gw-1", "liu"]
    hashes = conn.execute("SELECT password_hash FROM users WHERE username = 'liu'").fetchone()
    assert hashes is not None
    assert hashes[0].startswith("$argon2id$")
    assert [a[1] for a in _audit(conn, "user.create")] == ["user:admin", "user:liu", "user:gw-1"]


def test_session_expiry_follows_settings(
    client: TestClient, officer: str, conn: psycopg.Connection[Any]
) -> None:
    _login(client, officer)
    row = conn.execute("SELECT expires_at - created_at FROM api_tokens").fetchone()
    assert row == (timedelta(hours=1),)


@pytest.mark.slow
def test_users_cli(cli_env: dict[str, str], conn: psycopg.Connection[Any]) -> None:
    import subprocess
    import sys

    create = subprocess.run(
        [sys.executable, "-m", "brightkitchen.cli", "users", "create", "--username", "zhao",
         "--role", "director", "--person", "director-1", "--password-stdin"],
        input="director password\n", env=cli_env, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert create.returncode == 0, create.stderr
    short = subprocess.run(
        [sys.executable, "-m", "brightkitchen.cli", "users", "create", "--username", "q",
         "--role", "admin", "--password-stdin"],
        input="short\n", env=cli_env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert short.returncode == 2
    assert "8 characters" in short.stderr
    device = run_cli(
        "users", "create-device", "--name", "box-9", "--site", "school-001", env=cli_env
    )
    assert device.returncode == 0, device.stderr
    token = device.stdout.strip()
    assert token.startswith("bk_")
    row = conn.execute(
        "SELECT u.role, t.kind, t.expires_at FROM api_tokens t JOIN users u ON u.id = t.user_id "
        "WHERE t.token_hash = %s",
        (token_hash(token),),
    ).fetchone()
    assert row is not None
    assert row[:2] == ("device", "device")
    assert timedelta(days=179) < row[2] - utcnow() <= timedelta(days=180)  # it expires
    listing = run_cli("users", "list", env=cli_env)
    assert "zhao" in listing.stdout
    assert "box-9" in listing.stdout
    assert "school-001" in listing.stdout
    assert run_cli("users", "disable", "zhao", env=cli_env).returncode == 0
    assert conn.execute("SELECT active FROM users WHERE username = 'zhao'").fetchone() == (False,)
    assert run_cli("users", "disable", "nobody", env=cli_env).returncode == 1


def _app_with_cache(db_url: str, settings: ApiSettings, ttl_s: float) -> TestClient:
    auth = AuthSettings(cache_ttl_s=ttl_s, session_ttl_h=1)
    return TestClient(create_app(settings, common=CommonSettings(database_url=db_url), auth=auth))


def test_cached_token_still_ends_at_its_expiry_and_sign_out(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any], officer: str
) -> None:
    from api.auth.scope import Principal, Role
    from api.auth.users import issue_token
    from tests.support.services import wait_until

    row = conn.execute("SELECT id FROM users WHERE username = 'wang'").fetchone()
    assert row is not None
    who = Principal(user_id=str(row[0]), username="wang", role=Role.OFFICER)
    short = issue_token(conn, principal=who, kind="session", ttl=timedelta(seconds=1.5),
                        now=utcnow())  # fmt: skip
    with _app_with_cache(db_url, settings, ttl_s=60) as c:
        headers = {"Authorization": f"Bearer {short.token}"}
        assert c.get("/api/v1/auth/me", headers=headers).status_code == 200  # now cached
        assert len(c.app.state.auth_cache) == 1  # type: ignore[attr-defined]
        wait_until(lambda: c.get("/api/v1/auth/me", headers=headers).status_code == 401, 5)
        token = _login(c, officer).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert c.get("/api/v1/tickets", headers=headers).status_code == 200
        assert c.post("/api/v1/auth/logout", headers=headers).status_code == 204
        assert c.get("/api/v1/tickets", headers=headers).status_code == 401


def test_out_of_band_disable_applies_within_the_cache_ttl(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any], officer: str
) -> None:
    from api.auth.users import set_active
    from tests.support.services import wait_until

    with _app_with_cache(db_url, settings, ttl_s=1) as c:
        token = _login(c, officer).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert c.get("/api/v1/tickets", headers=headers).status_code == 200
        # as `brightkitchen users disable` in another process would: this app is not told
        set_active(conn, username=officer, active=False, actor="cli", now=utcnow())
        wait_until(lambda: c.get("/api/v1/tickets", headers=headers).status_code == 401, 5)
    with _app_with_cache(db_url, settings, ttl_s=0) as c:  # no cache: at once
        set_active(conn, username=officer, active=True, actor="cli", now=utcnow())
        token = _login(c, officer).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert c.get("/api/v1/tickets", headers=headers).status_code == 200
        set_active(conn, username=officer, active=False, actor="cli", now=utcnow())
        assert c.get("/api/v1/tickets", headers=headers).status_code == 401
