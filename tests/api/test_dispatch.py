"""Delivery through real local HTTP and SMTP servers: success, retries with backoff, dead rows."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from pydantic import ValidationError

from api.services.notify.base import Channel, OutgoingMessage
from api.services.notify.dingtalk import dingtalk_sign
from api.services.notify.dispatcher import backoff_delay_s, dispatch_due
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from tests.api.conftest import T0, HookServer, SmtpServer, insert_finding, site_data

NOW = T0 + timedelta(minutes=1)


def _notifications(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, channel, status, attempts, next_attempt_at, last_error, sent_at "
        "FROM notifications ORDER BY id"
    ).fetchall()


def _attempts(conn: psycopg.Connection[Any], nid: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT ok, detail, at FROM notification_attempts WHERE notification_id = %s ORDER BY id",
        (nid,),
    ).fetchall()


@pytest.mark.usefixtures("registry")
def test_alarm_is_delivered_by_webhook_and_email(
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
    channels: dict[str, Channel],
    hook: HookServer,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BK_TIME_ZONE", raising=False)  # the default zone, Asia/Shanghai
    monkeypatch.delenv("BK_CONSOLE_TIME_ZONE", raising=False)
    insert_finding(conn, key="alarm:1:raised", payload={"alarm_id": 1})
    process_findings(conn, now=NOW, settings=settings)
    assert dispatch_due(conn, now=NOW, settings=settings, channels=channels) == 2
    assert dispatch_due(conn, now=NOW, settings=settings, channels=channels) == 0

    [req] = hook.requests
    assert req.path == "/hook/officer-1"
    assert req.body["event"] == "ticket_opened"
    assert req.body["site_id"] == "school-001"
    assert req.body["rule"] == "temp_high"
    assert req.body["title"] == "冷藏温度超标 fridge over temperature limit: 冷藏柜 1"
    assert req.body["ticket_no"].startswith("ZG-20260302-")
    assert req.headers["Idempotency-Key"].startswith("bk-notification-")

    [mail] = smtp.messages
    assert smtp.envelopes == [(settings.smtp_from, ["officer-1@school.example"])]
    assert "整改通知" in str(mail["Subject"])
    assert "冷藏温度超标 fridge over temperature limit" in str(mail["Subject"])
    text = mail.get_content()
    assert "冷藏柜 1" in text
    assert req.body["link"] in text
    # the payload keeps the UTC instant; the text shows it as China's wall-clock time, named
    assert req.body["due_at"].endswith("Z")
    due = datetime.fromisoformat(req.body["due_at"])
    local = due.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")
    assert f"整改期限 Due: {local} (北京时间 China time, UTC+08:00)" in text
    assert due.strftime("%H:%M UTC") not in text
    assert "整改要求 What to do: 立即检查柜门是否关严" in text  # read away from the console

    rows = _notifications(conn)
    assert [(r[1], r[2], r[3]) for r in rows] == [("webhook", "sent", 1), ("email", "sent", 1)]
    for r in rows:
        [(ok, detail, _at)] = _attempts(conn, r[0])
        assert ok is True
        assert detail == "delivered"


@pytest.mark.usefixtures("registry")
def test_failing_webhook_is_retried_with_backoff_then_delivered(
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
    channels: dict[str, Channel],
    hook: HookServer,
) -> None:
    hook.statuses = [500, 503]
    insert_finding(conn, key="alarm:1:raised")
    process_findings(conn, now=NOW, settings=settings)
    dispatch_due(conn, now=NOW, settings=settings, channels=channels)
    [webhook] = [r for r in _notifications(conn) if r[1] == "webhook"]
    nid, _, status, attempts, next_at, last_error, _ = webhook
    assert (status, attempts) == ("pending", 1)
    assert "HTTP 500" in last_error
    retry_1 = next_at - NOW
    assert timedelta(seconds=1.9) <= retry_1 <= timedelta(seconds=2.5)  # base 2 s, no jitter

    # Not due yet: nothing is sent.
    assert (
        dispatch_due(conn, now=NOW + timedelta(seconds=1), settings=settings, channels=channels)
        == 0
    )
    t2 = next_at
    assert dispatch_due(conn, now=t2, settings=settings, channels=channels) == 1
    [webhook] = [r for r in _notifications(conn) if r[1] == "webhook"]
    assert (webhook[2], webhook[3]) == ("pending", 2)
    assert timedelta(seconds=3.9) <= webhook[4] - t2 <= timedelta(seconds=4.5)  # doubled

    assert dispatch_due(conn, now=webhook[4], settings=settings, channels=channels) == 1
    [webhook] = [r for r in _notifications(conn) if r[1] == "webhook"]
    assert (webhook[2], webhook[3], webhook[5]) == ("sent", 3, None)
    log = _attempts(conn, nid)
    assert [a[0] for a in log] == [False, False, True]
    assert "HTTP 503" in log[1][1]
    assert len(hook.requests) == 3


@pytest.mark.usefixtures("registry")
def test_notification_goes_dead_after_max_attempts(
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
    channels: dict[str, Channel],
    hook: HookServer,
) -> None:
    short = settings.model_copy(update={"max_attempts": 3})
    hook.statuses = [500] * 10
    insert_finding(conn, key="alarm:1:raised")
    process_findings(conn, now=NOW, settings=short)
    now = NOW
    for _ in range(5):
        dispatch_due(conn, now=now, settings=short, channels=channels)
        now += timedelta(seconds=short.backoff_max_s)
    [webhook] = [r for r in _notifications(conn) if r[1] == "webhook"]
    assert (webhook[2], webhook[3]) == ("dead", 3)
    assert len(_attempts(conn, webhook[0])) == 3
    assert len(hook.requests) == 3


def test_unreachable_and_unsupported_channels(
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
    channels: dict[str, Channel],
    hook: HookServer,
) -> None:
    from tests.support.services import free_port

    dead_port = free_port()
    data = site_data(
        hook.url,
        officer_channels=[
            {"kind": "webhook", "address": f"http://127.0.0.1:{dead_port}/nobody"},
            {"kind": "sms", "address": "+8613800000000"},
        ],
    )
    sync_registry(conn, parse_site_file(data))
    insert_finding(conn, key="k")
    process_findings(conn, now=NOW, settings=settings)
    dispatch_due(conn, now=NOW, settings=settings, channels=channels)
    by_channel = {r[1]: r for r in _notifications(conn)}
    assert by_channel["webhook"][2] == "pending"
    assert "ConnectError" in by_channel["webhook"][5]
    assert by_channel["sms"][2] == "dead"  # no sender: no point retrying
    assert "no sender" in by_channel["sms"][5]


def test_chat_robots_wecom_and_signed_dingtalk(
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
    channels: dict[str, Channel],
    hook: HookServer,
) -> None:
    hook.reply = {"errcode": 0, "errmsg": "ok"}
    data = site_data(
        hook.url,
        officer_channels=[
            {"kind": "wecom", "address": f"{hook.url}/cgi-bin/webhook/send?key=K1"},
            {
                "kind": "dingtalk",
                "address": f"{hook.url}/robot/send?access_token=T1",
                "secret": "SECabc",
            },
        ],
    )
    sync_registry(conn, parse_site_file(data))
    insert_finding(conn, key="k")
    process_findings(conn, now=NOW, settings=settings)
    assert dispatch_due(conn, now=NOW, settings=settings, channels=channels) == 2
    reqs = {r.path: r for r in hook.requests}
    wecom = reqs["/cgi-bin/webhook/send"]
    assert wecom.query == "key=K1"
    assert wecom.body["msgtype"] == "text"
    assert "冷藏柜 1" in wecom.body["text"]["content"]
    ding = reqs["/robot/send"]
    from urllib.parse import parse_qs

    q = parse_qs(ding.query)
    assert q["access_token"] == ["T1"]
    assert q["sign"] == [dingtalk_sign("SECabc", int(q["timestamp"][0]))]
    assert ding.body["text"]["content"] == wecom.body["text"]["content"]
    assert [r[2] for r in _notifications(conn)] == ["sent", "sent"]


def test_robot_error_code_is_a_failure(hook: HookServer, channels: dict[str, Channel]) -> None:
    from bkcommon.errors import DeliveryError

    hook.reply = {"errcode": 310000, "errmsg": "sign not match"}
    msg = OutgoingMessage(1, "dingtalk", f"{hook.url}/robot/send", "s", "body", {}, "SEC")
    with pytest.raises(DeliveryError, match="sign not match"):
        channels["dingtalk"].send(msg)


@pytest.mark.usefixtures("registry")
def test_a_claimed_notification_is_not_sent_twice_by_a_second_dispatcher(
    conn: psycopg.Connection[Any], settings: ApiSettings, hook: HookServer
) -> None:
    from api.services.notify.dispatcher import claim_due

    insert_finding(conn, key="k")
    process_findings(conn, now=NOW, settings=settings)
    first = claim_due(conn, now=NOW, settings=settings, limit=10)
    assert len(first) == 2
    assert claim_due(conn, now=NOW, settings=settings, limit=10) == []
    # A dispatcher that died mid-send: after the lease the rows come back.
    later = NOW + timedelta(seconds=settings.send_lease_s + 1)
    assert len(claim_due(conn, now=later, settings=settings, limit=10)) == 2


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 2.0), (2, 4.0), (3, 8.0), (9, 512.0), (10, 600.0), (30, 600.0)],
)
def test_backoff_doubles_and_caps(attempt: int, expected: float) -> None:
    got = backoff_delay_s(attempt, base_s=2, max_s=600, jitter=0, rng=random.Random(1))
    assert got == expected


def test_backoff_jitter_stays_in_band() -> None:
    rng = random.Random(7)
    values = [backoff_delay_s(3, base_s=2, max_s=600, jitter=0.2, rng=rng) for _ in range(200)]
    assert min(values) >= 8 * 0.8
    assert max(values) <= 8 * 1.2
    assert len(set(values)) > 100  # actually spread


def test_a_dispatch_leases_no_more_than_it_can_send_within_its_lease() -> None:
    """Results are recorded after the whole batch: 100 rows, 8 at a time, at a 10 s SMTP
    timeout outlived the 60 s lease and another replica sent them again."""
    from api.services.notify.dispatcher import claim_limit

    s = ApiSettings()  # lease 60 s, slowest channel 10 s, 8 senders: 3 rounds in half a lease
    assert claim_limit(s) == 24
    assert claim_limit(s, 5) == 5
    assert claim_limit(ApiSettings(send_lease_s=600, batch_size=100)) == 100
    with pytest.raises(ValidationError, match="send_lease_s"):
        ApiSettings(send_lease_s=15)
