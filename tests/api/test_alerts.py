"""Alerts to people: acknowledge links from a phone, escalation notices delivered to real local
HTTP and SMTP servers with retry after failure, and the SMS gateway channel."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.services.acklink import AckLinkError, make_ack_token, verify_ack_token
from api.services.escalation import run_escalation
from api.services.notify.base import Channel
from api.services.notify.channels import build_channels, close_channels
from api.services.notify.dispatcher import dispatch_due
from api.settings import ApiSettings
from bkcommon.localtime import fmt_local
from bkcommon.timeutil import utcnow
from tests.api.conftest import T0, HookServer, SmtpServer
from tests.api.loop_support import (
    SECRET_KEY,
    events,
    loop_client,
    loop_registry,
    loop_settings,
    open_alarm_ticket,
)

__all__ = ["loop_client", "loop_registry", "loop_settings"]


_LINK = re.compile(r"https?://\S+/api/v1/ack/(\S+)")


def _link_token(conn: psycopg.Connection[Any], ticket_id: int, person: str) -> str:
    row = conn.execute(
        "SELECT body FROM notifications WHERE ticket_id = %s AND person_id = %s ORDER BY id",
        (ticket_id, person),
    ).fetchone()
    assert row is not None
    m = _LINK.search(str(row[0]))
    assert m is not None, row[0]
    return m.group(1)


def test_token_signature_and_expiry() -> None:
    exp = T0 + timedelta(hours=1)
    tok = make_ack_token("k1", ticket_id=5, person_id="officer.1", expires_at=exp)
    claim = verify_ack_token("k1", tok, now=T0)
    assert (claim.ticket_id, claim.person_id) == (5, "officer.1")
    with pytest.raises(AckLinkError, match="expired"):
        verify_ack_token("k1", tok, now=exp)
    with pytest.raises(AckLinkError, match="invalid"):
        verify_ack_token("k2", tok, now=T0)
    forged = "6" + tok[1:]  # another ticket, same signature
    with pytest.raises(AckLinkError, match="invalid"):
        verify_ack_token("k1", forged, now=T0)
    with pytest.raises(AckLinkError, match="malformed"):
        verify_ack_token("k1", "a.b", now=T0)


@pytest.mark.usefixtures("loop_registry")
def test_acknowledge_from_a_phone_once(
    loop_client: TestClient,
    conn: psycopg.Connection[Any],
    loop_settings: ApiSettings,
    admin_headers: dict[str, str],
) -> None:
    tid = open_alarm_ticket(conn, loop_settings, now=utcnow())  # the link expires in real time
    token = _link_token(conn, tid, "officer-1")
    page = loop_client.get(f"/api/v1/ack/{token}")
    assert page.status_code == 200
    assert 'name="viewport"' in page.text
    # never inside another site's frame: a framed button could be clicked through a decoy
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert '<form method="post">' in page.text
    assert "ZG-" in page.text
    assert "<script" not in page.text
    # the deadline in China time with its zone named, the status in words, never codes
    due = conn.execute("SELECT due_at FROM tickets WHERE id = %s", (tid,)).fetchone()[0]
    assert f"{fmt_local(due)} (北京时间 China time, UTC+08:00)" in page.text
    assert "UTC<br>" not in page.text
    assert "状态 Status: 待处理 open" in page.text
    assert "整改要求 What to do: 立即检查柜门是否关严" in page.text  # read before acknowledging

    done = loop_client.post(f"/api/v1/ack/{token}")
    assert done.status_code == 200, done.text
    assert "Acknowledged" in done.text
    row = conn.execute(
        "SELECT status, acknowledged_at FROM tickets WHERE id = %s", (tid,)
    ).fetchone()
    assert row is not None
    assert row[0] == "acknowledged"
    assert row[1] is not None
    assert events(conn, tid)[-1] == (
        "acknowledged", "person:officer-1", "acknowledged from the notice link",
    )  # fmt: skip
    timeline = loop_client.get(f"/api/v1/tickets/{tid}", headers=admin_headers).json()["events"]
    names = {e["actor"]: e["actor_name"] for e in timeline}  # as people know them
    assert names["system"] is None
    person = conn.execute("SELECT name FROM people WHERE id = 'officer-1'").fetchone()
    assert person is not None
    assert names["person:officer-1"] == person[0]

    assert loop_client.post(f"/api/v1/ack/{token}").status_code == 409  # one time only
    assert "Already acknowledged" in loop_client.get(f"/api/v1/ack/{token}").text
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert loop_client.post(f"/api/v1/ack/{tampered}").status_code == 403
    expired = make_ack_token(
        SECRET_KEY, ticket_id=tid, person_id="officer-1",
        expires_at=utcnow() - timedelta(seconds=1),
    )  # fmt: skip
    assert loop_client.get(f"/api/v1/ack/{expired}").status_code == 403
    stranger = make_ack_token(
        SECRET_KEY, ticket_id=tid, person_id="nobody",
        expires_at=utcnow() + timedelta(hours=1),
    )  # fmt: skip
    assert loop_client.post(f"/api/v1/ack/{stranger}").status_code == 403
    assert loop_client.get(f"/api/v1/ack/{stranger}").status_code == 403  # the page too
    assert loop_client.get("/api/v1/ack/../../etc").status_code == 404
    # someone who left the canteen: the link no longer shows the ticket's title and status
    fresh = _link_token(conn, tid, "officer-1")
    assert loop_client.get(f"/api/v1/ack/{fresh}").status_code == 200
    conn.execute("DELETE FROM site_people WHERE person_id = 'officer-1'")
    gone = loop_client.get(f"/api/v1/ack/{fresh}")
    assert gone.status_code == 403
    assert "ZG-" not in gone.text


@pytest.mark.usefixtures("loop_registry")
def test_failed_acknowledge_does_not_use_up_the_link(
    loop_client: TestClient, conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    tid = open_alarm_ticket(conn, loop_settings, now=utcnow())
    token = make_ack_token(
        SECRET_KEY, ticket_id=tid, person_id="director-1",
        expires_at=utcnow() + timedelta(hours=1),
    )  # fmt: skip
    officer = _link_token(conn, tid, "officer-1")
    assert loop_client.post(f"/api/v1/ack/{officer}").status_code == 200
    r = loop_client.post(f"/api/v1/ack/{token}")  # already acknowledged: 409, link kept
    assert r.status_code == 409
    used = conn.execute("SELECT count(*) FROM ack_link_uses").fetchone()
    assert used == (1,)


@pytest.fixture
def channels(loop_settings: ApiSettings) -> Iterator[dict[str, Channel]]:
    chans = build_channels(loop_settings)
    yield chans
    close_channels(chans)


@pytest.mark.usefixtures("loop_registry")
def test_escalation_notices_reach_real_servers_with_retry(
    conn: psycopg.Connection[Any],
    loop_settings: ApiSettings,
    channels: dict[str, Channel],
    hook: HookServer,
    smtp: SmtpServer,
) -> None:
    s = loop_settings
    tid = open_alarm_ticket(conn, s)
    due = conn.execute("SELECT due_at FROM tickets WHERE id = %s", (tid,)).fetchone()
    assert due is not None
    at = due[0]
    assert dispatch_due(conn, now=at, settings=s, channels=channels) == 2  # opened: officer x2
    hook.requests.clear()
    smtp.messages.clear()

    assert run_escalation(conn, now=at, settings=s) == 3  # director (unack), reminder, warning
    hook.statuses.extend([503, 503])  # the first two webhook POSTs fail
    first = dispatch_due(conn, now=at, settings=s, channels=channels)
    assert first == 6  # director: unack + warning; officer: reminder + warning x (hook, mail)
    failed = conn.execute(
        "SELECT id, attempts, next_attempt_at FROM notifications WHERE status = 'pending'"
    ).fetchall()
    assert len(failed) == 2
    assert all(n == 1 for _, n, _ in failed)
    assert all(nxt == at + timedelta(seconds=s.backoff_base_s) or nxt > at for _, _, nxt in failed)
    later = max(nxt for _, _, nxt in failed)
    assert dispatch_due(conn, now=later, settings=s, channels=channels) == 2
    status = conn.execute("SELECT status, count(*) FROM notifications GROUP BY status").fetchall()
    assert status == [("sent", 8)]
    log = conn.execute(
        "SELECT ok, detail FROM notification_attempts WHERE notification_id = %s ORDER BY id",
        (failed[0][0],),
    ).fetchall()
    assert [ok for ok, _ in log] == [False, True]
    assert "503" in log[0][1]

    events_by_path = sorted((r.path, r.body["event"]) for r in hook.requests if r.body)
    assert ("/hook/director-1", "ticket_director") in events_by_path
    assert ("/hook/officer-1", "ticket_warning") in events_by_path
    director_notice = next(r.body for r in hook.requests if r.body["event"] == "ticket_director")
    assert "/api/v1/ack/" in director_notice["ack_link"]
    subjects = sorted(str(m["Subject"]) for m in smtp.messages)
    assert len(subjects) == 2
    assert any("Reminder" in x for x in subjects)
    assert all("officer-1@school.example" in str(m["To"]) for m in smtp.messages)
    assert "/api/v1/ack/" in smtp.messages[0].get_content()


@pytest.mark.usefixtures("loop_registry")
def test_sms_gateway_through_http_template(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings, hook: HookServer
) -> None:
    s = ApiSettings(
        **{
            **loop_settings.model_dump(),
            "sms_url_template": f"{hook.url}/sms/send?to={{phone}}",
            "sms_body_template": '{"phone": "{phone}", "text": "{text}", "sign": "明厨亮灶"}',
        }
    )
    conn.execute(
        "INSERT INTO person_channels (person_id, kind, address) VALUES ('officer-1', 'sms', %s)",
        ("+86 138 0000 0000",),
    )
    chans = build_channels(s)
    try:
        tid = open_alarm_ticket(conn, s)
        now = T0 + timedelta(seconds=1)
        assert dispatch_due(conn, now=now, settings=s, channels=chans, limit=2) == 2  # hook, mail
        hook.statuses.append(500)  # the gateway fails once
        assert dispatch_due(conn, now=now, settings=s, channels=chans) == 1
        sms = conn.execute(
            "SELECT id, status, attempts, next_attempt_at, last_error FROM notifications "
            "WHERE ticket_id = %s AND channel = 'sms'",
            (tid,),
        ).fetchone()
        assert sms is not None
        assert sms[1:3] == ("pending", 1)
        assert "SMS gateway HTTP 500" in sms[4]
        assert dispatch_due(conn, now=sms[3], settings=s, channels=chans) == 1
        sms_status = conn.execute(
            "SELECT status, attempts FROM notifications WHERE id = %s", (sms[0],)
        ).fetchone()
        assert sms_status == ("sent", 2)
    finally:
        close_channels(chans)
    got = [r for r in hook.requests if r.path == "/sms/send"]
    assert len(got) == 2
    assert got[-1].query == "to=%2B86%20138%200000%200000"
    assert got[-1].body["phone"] == "+86 138 0000 0000"
    assert got[-1].body["sign"] == "明厨亮灶"
    assert "整改通知" in got[-1].body["text"]
    assert "/api/v1/ack/" in got[-1].body["text"]
