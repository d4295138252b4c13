"""A device token may only do what a device does: every other route answers it 403.

The walk covers the whole route table (API and console), not a list kept by hand: every
route that authenticates is called with a device token, and only the routes marked
``DEVICE_ALLOWED`` may answer anything but 403. Rotation and expiry of device tokens too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth.device import DEVICE_ALLOWED_KEY
from api.auth.settings import AuthSettings
from api.auth.users import create_device
from api.deps import get_auth
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.timeutil import utcnow

pytestmark = pytest.mark.usefixtures("registry")

ALLOWED = {
    ("GET", "/api/v1/auth/me"),
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/auth/rotate"),
}


def _app(db_url: str, settings: ApiSettings, **auth: Any) -> FastAPI:
    return create_app(
        settings, common=CommonSettings(database_url=db_url), auth=AuthSettings(**auth)
    )


def _routes(app: FastAPI) -> Iterator[tuple[str, APIRoute]]:
    for route in app.routes:
        if isinstance(route, APIRoute):
            yield route.path, route
        elif hasattr(route, "effective_route_contexts"):  # FastAPI >= 0.16x include
            for ctx in route.effective_route_contexts():
                if isinstance(ctx.original_route, APIRoute):
                    yield ctx.path, ctx.original_route


def _authenticates(dep: Dependant) -> bool:
    return dep.call is get_auth or any(_authenticates(d) for d in dep.dependencies)


def _device(conn: psycopg.Connection[Any], name: str = "box-x", **kw: Any) -> str:
    return create_device(conn, name=name, site_ids=("school-001",), now=utcnow(), **kw).token


def test_a_device_is_refused_on_every_route_but_its_own(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any], caplog: Any
) -> None:
    app = _app(db_url, settings)
    token = _device(conn)
    marked: set[tuple[str, str]] = set()
    answered: dict[tuple[str, str], int] = {}
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for path, route in _routes(app):
            if not _authenticates(route.dependant):
                continue  # public: health, metrics, sign-in, signed links, console files
            url = re.sub(r"{[^}]+}", "1", path)
            for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
                if (route.openapi_extra or {}).get(DEVICE_ALLOWED_KEY):
                    marked.add((method, path))
                if (method, path) == ("POST", "/api/v1/auth/logout"):
                    continue  # would end this token; tested below
                answered[(method, path)] = client.request(method, url).status_code
    assert len(answered) > 40  # the walk found the route table
    assert marked == ALLOWED, "the device allow-list changed: update SECURITY.md and this test"
    wrong = {k: v for k, v in answered.items() if (v == 403) == (k in ALLOWED)}
    assert not wrong, f"device answers outside the allow-list rule: {wrong}"
    assert answered[("GET", "/api/v1/auth/me")] == 200
    # every refusal is a warning an operator can alert on (a real box never calls these)
    warned = [r.getMessage() for r in caplog.records if r.name == "api.auth.device"]
    assert len(warned) == sum(1 for v in answered.values() if v == 403)
    assert "device box-x refused on GET /api/v1/tickets (outside" in "\n".join(warned)


def test_device_tokens_expire_and_rotate_with_a_grace_period(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any]
) -> None:
    app = _app(db_url, settings, cache_ttl_s=0, rotate_grace_s=600, device_token_ttl_d=30)
    token = _device(conn, ttl=timedelta(days=30))
    old = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as client:
        r = client.post("/api/v1/auth/rotate", headers=old)
        assert r.status_code == 200, r.text
        body = r.json()
        new = {"Authorization": f"Bearer {body['access_token']}"}
        assert body["access_token"] != token
        assert body["user"]["role"] == "device"
        lifetime = (
            _parse(body["expires_at"]) - utcnow()  # about BK_AUTH_DEVICE_TOKEN_TTL_D
        )
        assert timedelta(days=29) < lifetime <= timedelta(days=30)
        assert client.get("/api/v1/auth/me", headers=new).status_code == 200
        assert client.get("/api/v1/auth/me", headers=old).status_code == 200  # grace period
        row = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.rotate' AND actor = 'box-x'"
        ).fetchone()
        assert row == (1,)
        # the grace period ends; so does a token past its expiry
        conn.execute(
            "UPDATE api_tokens SET expires_at = now() - interval '1 s' WHERE expires_at < %s",
            (utcnow() + timedelta(days=1),),
        )
        assert client.get("/api/v1/auth/me", headers=old).status_code == 401
        assert client.get("/api/v1/auth/me", headers=new).status_code == 200
        conn.execute("UPDATE api_tokens SET expires_at = now() - interval '1 s'")
        assert client.get("/api/v1/auth/me", headers=new).status_code == 401


def test_only_devices_rotate_and_without_grace_the_old_token_ends_at_once(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any], admin_headers: dict[str, str]
) -> None:
    app = _app(db_url, settings, cache_ttl_s=0, rotate_grace_s=0)
    token = _device(conn, name="box-y")
    with TestClient(app) as client:
        assert client.post("/api/v1/auth/rotate", headers=admin_headers).status_code == 403
        old = {"Authorization": f"Bearer {token}"}
        new_token = client.post("/api/v1/auth/rotate", headers=old).json()["access_token"]
        assert client.get("/api/v1/auth/me", headers=old).status_code == 401
        new = {"Authorization": f"Bearer {new_token}"}
        assert client.get("/api/v1/auth/me", headers=new).status_code == 200


def test_devices_created_over_http_get_an_expiring_token(
    db_url: str, settings: ApiSettings, conn: psycopg.Connection[Any], admin_headers: dict[str, str]
) -> None:
    app = _app(db_url, settings, device_token_ttl_d=7)
    with TestClient(app) as client:
        r = client.post(
            "/api/v1/users/devices",
            headers=admin_headers,
            json={"name": "box-z", "site_ids": ["school-001"]},
        )
        assert r.status_code == 201, r.text
    row = conn.execute(
        "SELECT expires_at - created_at FROM api_tokens WHERE kind = 'device' AND name = 'box-z'"
    ).fetchone()
    assert row == (timedelta(days=7),)


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))
