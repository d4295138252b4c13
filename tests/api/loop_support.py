"""Shared pieces of the closed-loop tests: a site with officer, director and regulator, images."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import cv2
import numpy as np
import psycopg
import pytest

from api.auth.scope import Role, SiteScope
from api.services.lifecycle import Actor
from api.settings import ApiSettings
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from tests.api.conftest import HookServer, SmtpServer, site_data

ALL = SiteScope.everything()
SCHOOL1 = SiteScope(all_sites=False, site_ids=("school-001",))
SCHOOL2 = SiteScope(all_sites=False, site_ids=("school-002",))

OFFICER = Actor("officer-user", Role.OFFICER, user_id="u-officer", person_id="officer-1")
DIRECTOR = Actor("director-user", Role.DIRECTOR, user_id="u-director", person_id="director-1")
REGULATOR = Actor("regulator-user", Role.REGULATOR, user_id="u-regulator")
INSURER = Actor("insurer-user", Role.INSURER, user_id="u-insurer")


SECRET_KEY = "test-secret-key-" * 2
"""Signs the acknowledge links of the loop tests (the API takes 32 characters or more)."""


def loop_site_data(hook_url: str) -> dict[str, Any]:
    """The API test site plus a regulator (包保) with a webhook and an SMS number."""
    data = site_data(hook_url)
    data["people"].append(
        {
            "id": "regulator-1",
            "name": "张监管",
            "channels": [{"kind": "webhook", "address": f"{hook_url}/hook/regulator-1"}],
        }
    )
    data["sites"][0]["people"]["regulator"] = ["regulator-1"]
    return data


@pytest.fixture
def loop_registry(conn: psycopg.Connection[Any], hook: HookServer) -> None:
    """Registry with officer, director and regulator for school-001."""
    sync_registry(conn, parse_site_file(loop_site_data(hook.url)))


@pytest.fixture
def loop_settings(settings: ApiSettings, smtp: SmtpServer, tmp_path: Any) -> ApiSettings:
    """Test settings with a secret (acknowledge links) and an evidence folder of its own."""
    return ApiSettings(
        **{
            **settings.model_dump(),
            "secret_key": SECRET_KEY,
            "evidence_dir": tmp_path / "evidence",
            "max_upload_mb": 1.0,
        }
    )


def jpeg_bytes(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    """A real JPEG image (a coloured gradient) that differs by ``seed``."""
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:, :, 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    img[:, :, 1] = (seed * 37) % 256
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return bytes(buf.tobytes())


def png_bytes(width: int = 4, height: int = 3) -> bytes:
    """A minimal valid PNG (grey pixels), built by hand."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def events(conn: psycopg.Connection[Any], ticket_id: int) -> list[tuple[str, str, str]]:
    """(kind, actor, note) of a ticket's timeline, oldest first."""
    rows = conn.execute(
        "SELECT kind, actor, note FROM ticket_events WHERE ticket_id = %s ORDER BY id",
        (ticket_id,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def notices(conn: psycopg.Connection[Any], ticket_id: int) -> list[tuple[str, str, str]]:
    """(person, event, dedupe key) of the notifications queued for a ticket."""
    rows = conn.execute(
        "SELECT person_id, payload->>'event', dedupe_key FROM notifications "
        "WHERE ticket_id = %s ORDER BY id",
        (ticket_id,),
    ).fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


@pytest.fixture
def loop_client(db_url: str, loop_settings: ApiSettings, loop_registry: None) -> Iterator[Any]:
    """A TestClient of the app (workers off) over the loop registry."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from bkcommon.settings import CommonSettings

    app = create_app(loop_settings, common=CommonSettings(database_url=db_url))
    with TestClient(app) as c:
        yield c


@pytest.fixture
def who(conn: psycopg.Connection[Any], loop_registry: None) -> dict[str, dict[str, str]]:
    """Authorization headers by role: officer, director, regulator (region d1), insurer,
    an officer of another canteen (stranger) and an admin."""
    from tests.api.conftest import make_user_token

    tokens = {
        "officer": make_user_token(conn, username="wang", role="officer", person_id="officer-1"),
        "director": make_user_token(conn, username="li", role="director", person_id="director-1"),
        "regulator": make_user_token(conn, username="zhang", role="regulator", region_id="d1"),
        "insurer": make_user_token(
            conn, username="ins", role="insurer", insurer="PICC", site_ids=("school-001",)
        ),
        "stranger": make_user_token(
            conn, username="other", role="officer", site_ids=("school-002",)
        ),
        "admin": make_user_token(conn, username="root", role="admin"),
    }
    return {k: {"Authorization": f"Bearer {v}"} for k, v in tokens.items()}


def open_alarm_ticket(
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
    key: str = "a1",
    now: datetime | None = None,
) -> int:
    """A fridge over-temperature ticket at school-001 (through the engine); its id."""
    from api.services.tickets import process_findings
    from tests.api.conftest import T0, insert_finding

    insert_finding(conn, key=f"alarm:{key}:raised", payload={"alarm_id": 1}, notify=False)
    process_findings(conn, now=now or T0, settings=settings)
    row = conn.execute(
        "SELECT ticket_id FROM findings WHERE finding_key = %s", (f"alarm:{key}:raised",)
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def tid(conn: psycopg.Connection[Any], loop_settings: ApiSettings, loop_registry: None) -> int:
    """Id of an open alarm ticket at the loop site."""
    return open_alarm_ticket(conn, loop_settings)
