"""Alert channels over HTTP: the masked list per role and a test send through real channels.

The webhook receiver and the SMTP server are real (tests/api/conftest.py); a test send
goes through the dispatcher's senders, so what they receive is what a person would get.
"""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.api.conftest import HookServer, SmtpServer
from tests.api.loop_support import loop_client, loop_registry, loop_settings, who

__all__ = ["loop_client", "loop_registry", "loop_settings", "who"]

H = dict[str, dict[str, str]]
LIST = "/api/v1/alerts/channels"


def test_list_is_masked_and_scoped_per_role(loop_client: TestClient, who: H) -> None:
    c = loop_client
    assert c.get(LIST).status_code == 401
    assert c.get(LIST, headers=who["insurer"]).status_code == 403
    for role in ("officer", "director", "regulator", "admin"):
        r = c.get(LIST, headers=who[role])
        assert r.status_code == 200, (role, r.text)
        rows = r.json()["data"]
        got = [(x["person_id"], x["index"], x["kind"]) for x in rows]
        assert got == [
            ("director-1", 0, "webhook"),
            ("officer-1", 0, "webhook"),
            ("officer-1", 1, "email"),
            ("regulator-1", 0, "webhook"),
        ], role
        assert "hook/officer-1" not in r.text  # masked
        assert "officer-1@school" not in r.text
        officer = rows[1]
        assert officer["address_masked"].startswith("http://127.0.0.1:")
        assert officer["sites"] == [{"site_id": "school-001", "role": "officer"}]
        assert rows[2]["address_masked"] == "o…1@school.example"
    stranger = c.get(LIST, headers=who["stranger"])  # school-002 names nobody
    assert stranger.status_code == 200
    assert stranger.json() == {"data": []}


def test_send_test_delivers_through_the_webhook_and_email(
    loop_client: TestClient,
    who: H,
    hook: HookServer,
    smtp: SmtpServer,
    conn: psycopg.Connection[Any],
) -> None:
    c = loop_client
    url = "/api/v1/alerts/channels/officer-1/0/test"
    assert c.post(url).status_code == 401
    assert c.post(url, headers=who["insurer"]).status_code == 403
    assert c.post(url, headers=who["stranger"]).status_code == 404  # not one of its people
    assert (
        c.post("/api/v1/alerts/channels/officer-1/7/test", headers=who["admin"]).status_code == 404
    )
    assert not hook.requests
    for n, role in enumerate(("officer", "director", "regulator", "admin"), start=1):
        r = c.post(url, headers=who[role])
        assert r.status_code == 200, (role, r.text)
        body = r.json()
        assert (body["delivered"], body["detail"], body["kind"]) == (True, "delivered", "webhook")
        assert "hook/officer-1" not in r.text
        assert len(hook.requests) == n
    got = hook.requests[-1]
    assert got.path == "/hook/officer-1"
    assert got.body["event"] == "channel_test"
    assert got.body["test"] is True
    assert (got.body["person_id"], got.body["sent_by"]) == ("officer-1", "root")

    mail = c.post("/api/v1/alerts/channels/officer-1/1/test", headers=who["officer"])
    assert mail.json()["delivered"] is True, mail.text
    assert len(smtp.messages) == 1
    assert smtp.envelopes[0][1] == ["officer-1@school.example"]
    assert "测试 TEST" in str(smtp.messages[0]["Subject"])

    rows = conn.execute(
        "SELECT actor, target, data->>'delivered' FROM audit_log WHERE action = 'alerts.test' "
        "ORDER BY id"
    ).fetchall()
    assert rows == [
        ("wang", "officer-1/0", "true"),
        ("li", "officer-1/0", "true"),
        ("zhang", "officer-1/0", "true"),
        ("root", "officer-1/0", "true"),
        ("wang", "officer-1/1", "true"),
    ]


def test_send_test_reports_the_channels_error(
    loop_client: TestClient, who: H, hook: HookServer, conn: psycopg.Connection[Any]
) -> None:
    hook.statuses.append(502)
    r = loop_client.post("/api/v1/alerts/channels/director-1/0/test", headers=who["director"])
    assert r.status_code == 200, r.text
    assert r.json()["delivered"] is False
    assert r.json()["detail"].startswith("HTTP 502"), r.json()
    row = conn.execute(
        "SELECT data->>'detail' FROM audit_log WHERE action = 'alerts.test'"
    ).fetchone()
    assert row is not None
    assert row[0].startswith("HTTP 502")
