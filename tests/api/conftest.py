"""Fixtures of the API tests: a registry, a real webhook receiver and a real SMTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from api.services.notify.base import Channel
from api.services.notify.channels import build_channels, close_channels
from api.settings import ApiSettings
from bkcommon.sitefile import parse_site_file
from bkcommon.timeutil import utcnow
from brightkitchen.registry import sync_registry
from tests.support.services import free_port

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@dataclass
class Received:
    """One request the hook server received."""

    path: str
    query: str
    headers: dict[str, str]
    body: Any


@dataclass
class HookServer:
    """A real HTTP server recording POSTs; answers the queued status codes, then 200."""

    port: int
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    reply: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r.body for r in self.requests]


@pytest.fixture
def hook() -> Iterator[HookServer]:
    """A webhook receiver on a free port of 127.0.0.1."""
    state = HookServer(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            path, _, query = self.path.partition("?")
            with state.lock:
                status = state.statuses.pop(0) if state.statuses else 200
                state.requests.append(
                    Received(path, query, dict(self.headers.items()), json.loads(raw or b"null"))
                )
            out = json.dumps(state.reply or {"ok": True}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", state.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class SmtpServer:
    """A real SMTP server (aiosmtpd) collecting the messages it accepts."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """An SMTP server on a free port of 127.0.0.1."""
    from aiosmtpd.controller import Controller

    state = SmtpServer(port=free_port())

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
            state.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            mail = message_from_bytes(envelope.original_content, policy=policy.default)
            assert isinstance(mail, EmailMessage)
            state.messages.append(mail)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=state.port)
    controller.start()
    yield state
    controller.stop()


def site_data(
    hook_url: str, *, officer_channels: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A site file: a canteen with an officer (webhook + e-mail), a director, sensors, a camera."""
    channels = officer_channels or [
        {"kind": "webhook", "address": f"{hook_url}/hook/officer-1"},
        {"kind": "email", "address": "officer-1@school.example"},
    ]
    return {
        "regions": [{"id": "d1", "name": "示范区"}],
        "people": [
            {"id": "officer-1", "name": "王食安", "channels": channels},
            {
                "id": "director-1",
                "name": "李总监",
                "channels": [{"kind": "webhook", "address": f"{hook_url}/hook/director-1"}],
            },
        ],
        "sites": [
            {
                "id": "school-001",
                "name": "第一实验小学食堂",
                "region": "d1",
                "people": {"officer": ["officer-1"], "director": ["director-1"]},
                "sensors": [
                    {"id": "fridge-1", "name": "冷藏柜 1", "profile": "fridge"},
                    {"id": "freezer-1", "name": "冷冻柜 1", "profile": "freezer"},
                ],
                "edge_boxes": [
                    {"id": "box-1", "cameras": [{"id": "cam-1", "name": "凉菜专间", "url": "x"}]}
                ],
            },
            {"id": "school-002", "name": "第二中学食堂", "region": "d1"},
        ],
    }


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test database."""
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@pytest.fixture
def registry(conn: psycopg.Connection[Any], hook: HookServer) -> None:
    """The test site file loaded into the registry tables."""
    sync_registry(conn, parse_site_file(site_data(hook.url)))


@pytest.fixture
def settings(smtp: SmtpServer) -> ApiSettings:
    """API settings pointing at the test SMTP server, with no jitter and fast retries."""
    return ApiSettings(
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_timeout_s=5,
        webhook_timeout_s=2,
        backoff_base_s=2,
        backoff_max_s=600,
        backoff_jitter=0,
        max_attempts=8,
        poll_interval_s=1,
        workers_enabled=False,
        public_base_url="https://bk.example",
    )


def insert_finding(
    conn: psycopg.Connection[Any],
    *,
    key: str,
    kind: str = "alarm_raised",
    site_id: str = "school-001",
    subject: str = "fridge-1",
    rule: str = "temp_high",
    tier: int = 2,
    occurred_at: datetime = T0,
    payload: dict[str, Any] | None = None,
    notify: bool = True,
) -> int:
    """Write a finding as ingest does (and NOTIFY bk_findings); return its id."""
    with conn.transaction():
        row = conn.execute(
            """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier,
                                     occurred_at, payload)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (key, kind, site_id, subject, rule, tier, occurred_at, Jsonb(payload or {})),
        ).fetchone()
        assert row is not None
        if notify:
            conn.execute("SELECT pg_notify('bk_findings', %s)", (str(row[0]),))
    return int(row[0])


def insert_alarm(
    conn: psycopg.Connection[Any],
    *,
    key: str,
    site_id: str = "school-001",
    sensor_id: str = "fridge-1",
    rule: str = "temp_high",
    status: str = "active",
    raised_at: datetime = T0,
) -> int:
    """Write an alarm row as ingest does; return its id."""
    row = conn.execute(
        """INSERT INTO alarms (alarm_key, site_id, sensor_id, rule, tier, status, started_at,
                               raised_at, peak_temp_c, details)
           VALUES (%s, %s, %s, %s, 2, %s, %s, %s, 11.5, '{"limit_c": 8.0}') RETURNING id""",
        (key, site_id, sensor_id, rule, status, raised_at, raised_at),
    ).fetchone()
    assert row is not None
    return int(row[0])


def make_user_token(
    conn: psycopg.Connection[Any],
    *,
    username: str,
    role: str = "admin",
    password: str | None = "correct horse battery",
    site_ids: tuple[str, ...] = (),
    **anchors: str,
) -> str:
    """Create a user (any role) and return a fresh session token of it."""
    from datetime import timedelta

    from api.auth.scope import Role
    from api.auth.users import create_device, create_user, issue_token
    from bkcommon.timeutil import utcnow

    if role == "device":
        return create_device(conn, name=username, site_ids=site_ids, now=utcnow()).token
    principal = create_user(
        conn,
        username=username,
        role=Role(role),
        password=password,
        site_ids=site_ids,
        region_id=anchors.get("region_id"),
        person_id=anchors.get("person_id"),
        insurer=anchors.get("insurer"),
    )
    return issue_token(
        conn, principal=principal, kind="session", ttl=timedelta(hours=1), now=utcnow()
    ).token


@pytest.fixture
def admin_token(conn: psycopg.Connection[Any]) -> str:
    """A session token of an admin user (sees every site)."""
    return make_user_token(conn, username="admin")


@pytest.fixture
def admin_headers(admin_token: str) -> dict[str, str]:
    """Authorization header of the admin."""
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
def channels(settings: ApiSettings) -> Iterator[dict[str, Channel]]:
    """The notification channels of ``settings`` (webhook, e-mail, robots, SMS), closed after."""
    chans = build_channels(settings)
    yield chans
    close_channels(chans)


@pytest.fixture
def world(conn: psycopg.Connection[Any]) -> Any:
    """Two districts of canteens with a user of every role (``tests.api.authz_world``)."""
    from tests.api.authz_world import build_world  # it imports this module

    return build_world(conn)


@pytest.fixture
def client(db_url: str, settings: ApiSettings, tmp_path: Any) -> Iterator[Any]:
    """The API (workers off) with evidence in a fresh folder; nobody signed in."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from bkcommon.settings import CommonSettings

    app_settings = settings.model_copy(update={"evidence_dir": tmp_path / "evidence"})
    with TestClient(create_app(app_settings, common=CommonSettings(database_url=db_url))) as c:
        yield c


def rapid_test_body(site: str, **extra: Any) -> dict[str, Any]:
    """A rapid test's POST body: a failed pesticide test of greens at ``site``."""
    return {
        "site_id": site,
        "sample_no": "S-001",
        "product": "青菜",
        "item": "pesticide_enzyme",
        "method": "酶抑制率法 GB/T 5009.199",
        "result": "fail",
        "value": 62.5,
        "limit": 50,
        "unit": "%",
        "tester": "Tester Zhang",
        "tested_at": utcnow().isoformat(),
    } | extra
