"""Notices that must still reach the officer: a hanging endpoint, a title over two lines, a
long text for a chat robot, an SMS with its link, a site without an officer's channel, a
4xx that no retry fixes, and a signed webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from api.auth.scope import Role, SiteScope
from api.services.inspections import InspectionCreate, create_inspection
from api.services.lifecycle import Action, Actor, apply_action
from api.services.notify.base import Channel, OutgoingMessage
from api.services.notify.channels import build_channels, close_channels
from api.services.notify.dispatcher import dispatch_due
from api.services.notify.sms import SmsChannel
from api.services.notify.webhook import WebhookChannel
from api.services.notify.wecom import WeComChannel
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.errors import DeliveryError
from bkcommon.sitefile import parse_site_file
from bkcommon.timeutil import utcnow
from brightkitchen.registry import sync_registry
from tests.api.conftest import T0, HookServer, SmtpServer, insert_finding, site_data
from tests.support.services import free_port

NOW = T0 + timedelta(minutes=1)


def _rows(conn: psycopg.Connection[Any]) -> dict[str, tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT channel, status, attempts, last_error, next_attempt_at FROM notifications"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


class DripServer:
    """Answers 200 with a 20-byte body sent one byte every ``gap_s``: each read is quick,
    the whole answer is not."""

    def __init__(self, gap_s: float = 0.5, n: int = 20) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.gap_s, self.n = gap_s, n
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c: socket.socket) -> None:
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                data += c.recv(65536)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.n)
            for _ in range(self.n):
                time.sleep(self.gap_s)
                c.sendall(b"x")
        except OSError:
            pass
        finally:
            c.close()


def test_a_trickling_webhook_does_not_hold_the_dispatcher(
    conn: psycopg.Connection[Any], settings: ApiSettings, smtp: SmtpServer
) -> None:
    drip = DripServer()  # 20 bytes at 0.5 s: 10 s for the answer, each read well in time
    officer = [
        {"kind": "webhook", "address": f"http://127.0.0.1:{drip.port}/hook"},
        {"kind": "email", "address": "officer-1@school.example"},
    ]
    sync_registry(conn, parse_site_file(site_data("http://x", officer_channels=officer)))
    fast = settings.model_copy(
        update={"smtp_timeout_s": 1, "webhook_timeout_s": 1, "send_lease_s": 3}
    )
    insert_finding(conn, key="f1")
    process_findings(conn, now=NOW, settings=fast)
    chans = build_channels(fast)
    try:
        now = utcnow()
        t0 = time.monotonic()
        assert dispatch_due(conn, now=now, settings=fast, channels=chans) == 2
        took = time.monotonic() - t0
    finally:
        close_channels(chans)
    # the batch's budget (1.5 s) ends before the channel's own deadline (2 s): abandoned
    assert took < 3.0, f"one dispatch took {took:.1f} s with a 3 s lease"  # was 10 s
    rows = _rows(conn)
    assert rows["email"][0] == "sent"
    status, attempts, error, next_at = rows["webhook"]
    assert (status, attempts) == ("pending", 1)
    assert "no answer within" in error
    assert next_at >= now + timedelta(seconds=fast.send_lease_s)  # not again while in flight


def test_a_trickling_answer_ends_the_send_itself() -> None:
    """The abandoned send's thread must end too: the channel reads the answer against a
    deadline of twice its read timeout, not for as long as the endpoint drips."""
    drip = DripServer(gap_s=0.5, n=40)  # 20 s for the whole answer
    chan = WebhookChannel(timeout_s=1)
    msg = OutgoingMessage(
        notification_id=1, channel="webhook", address=f"http://127.0.0.1:{drip.port}/h",
        subject="s", body="b", payload={"x": 1},
    )  # fmt: skip
    t0 = time.monotonic()
    with pytest.raises(DeliveryError, match="no whole answer within 2 s"):
        chan.send(msg)
    assert time.monotonic() - t0 < 4
    chan.close()


@pytest.mark.usefixtures("registry")
def test_an_inspection_item_over_two_lines_still_reaches_the_officer_by_email(
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
    channels: dict[str, Channel],
    smtp: SmtpServer,
) -> None:
    data = InspectionCreate.model_validate(
        {
            "site_id": "school-001",
            "kind": "routine",
            "inspectors": ["张检查"],
            "started_at": T0.isoformat(),
            "items": [
                {"code": "c1", "result": "fail", "text_zh": "冷藏柜温度\r\n记录不全"},
            ],
        }
    )
    create_inspection(conn=conn, data=data, scope=SiteScope.everything(), actor="t", now=NOW)
    assert process_findings(conn, now=NOW, settings=settings) == 1
    dispatch_due(conn, now=NOW, settings=settings, channels=channels)
    assert _rows(conn)["email"][:2] == ("sent", 1)  # was: dead after 8 tries, ValueError
    [mail] = smtp.messages
    assert "冷藏柜温度 记录不全" in str(mail["Subject"])
    assert "\n" not in str(mail["Subject"]).replace("\n ", "")


class RobotServer:
    """A WeCom robot as documented: text.content over 2048 bytes → errcode 40058 (HTTP 200)."""

    def __init__(self) -> None:
        self.contents: list[str] = []
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                content = json.loads(raw)["text"]["content"]
                state.contents.append(content)
                if len(content.encode()) > 2048:
                    reply = {"errcode": 40058, "errmsg": "text.content exceed max length 2048"}
                else:
                    reply = {"errcode": 0, "errmsg": "ok"}
                out = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_rejection_with_a_long_note_reaches_the_wecom_group(
    conn: psycopg.Connection[Any], settings: ApiSettings, hook: HookServer
) -> None:
    robot = RobotServer()
    try:
        wecom = [{"kind": "wecom", "address": f"http://127.0.0.1:{robot.port}/send?key=K"}]
        sync_registry(conn, parse_site_file(site_data(hook.url, officer_channels=wecom)))
        insert_finding(conn, key="f1")
        process_findings(conn, now=NOW, settings=settings)
        conn.execute("UPDATE tickets SET status = 'rectified'")
        note = "照片中冷藏柜仍显示9度，温度记录表未填写，请重新整改并上传温度计读数照片。" * 20
        apply_action(
            conn,
            ticket_id=1,
            action=Action.REJECT,
            actor=Actor("reg", Role.REGULATOR),
            scope=SiteScope.everything(),
            now=NOW,
            settings=settings,
            note=note,
        )
        chans = build_channels(settings)
        try:
            dispatch_due(conn, now=NOW, settings=settings, channels=chans)
        finally:
            close_channels(chans)
        statuses = conn.execute(
            "SELECT status, last_error FROM notifications ORDER BY id"
        ).fetchall()
        assert statuses == [("sent", None), ("sent", None)]  # was: 40058, retried until dead
        [rejected] = [c for c in robot.contents if "驳回" in c and "…" in c]
        assert len(note.encode()) > 2048
        assert len(rejected.encode()) <= 2048
        assert rejected.endswith("/console/tickets/1")  # the link survives the cut
    finally:
        robot.server.shutdown()
        robot.server.server_close()


def test_wecom_cut_never_splits_a_character() -> None:
    import httpx

    sent: list[Any] = []

    def robot(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        return httpx.Response(200, json={"errcode": 0})

    client = httpx.Client(transport=httpx.MockTransport(robot), timeout=1)
    ch = WeComChannel(timeout_s=1, client=client)
    ch.send(OutgoingMessage(1, "wecom", "http://robot/send", "s", "食" * 1000))
    content = sent[0]["text"]["content"]
    assert len(content.encode()) <= 2048
    assert content.endswith("…")
    assert "\ufffd" not in content


def test_sms_keeps_the_acknowledge_link_whole() -> None:
    got: list[str] = []

    class Fake:
        def get(self, url: str) -> Any:
            from urllib.parse import unquote

            import httpx

            got.append(unquote(url.split("m=", 1)[1]))
            return httpx.Response(200, request=httpx.Request("GET", url))

    sms = SmsChannel(
        url_template="http://gw/send?to={phone}&m={text}",
        method="GET",
        body_template="",
        content_type="application/json",
        timeout_s=1,
        client=Fake(),  # type: ignore[arg-type]
    )
    link = "https://bk.example/api/v1/ack/" + "t" * 150
    subject = "【整改通知】ZG-20260302-1 " + "冷藏库内生熟食品未分开存放，" * 30
    sms.send(OutgoingMessage(1, "sms", "+8613800000000", subject, "", {"ack_link": link}))
    assert got[0].endswith(" " + link)  # was: the link cut to its first characters
    assert len(got[0]) <= 500


def test_an_officer_without_a_channel_does_not_leave_the_opening_unheard(
    conn: psycopg.Connection[Any], settings: ApiSettings, hook: HookServer
) -> None:
    data = site_data(hook.url)
    data["people"][0]["channels"] = []  # the officer is named, with no way to reach them
    sync_registry(conn, parse_site_file(data))
    insert_finding(conn, key="f1")
    process_findings(conn, now=NOW, settings=settings)
    rows = conn.execute("SELECT person_id, dedupe_key FROM notifications").fetchall()
    assert rows == [("director-1", "ticket:1:opened-no-officer:director-1:" + rows[0][1][-1])]


@pytest.mark.usefixtures("registry")
def test_a_4xx_is_given_up_at_once_and_a_5xx_retried(
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
    channels: dict[str, Channel],
    hook: HookServer,
) -> None:
    hook.statuses = [404]
    insert_finding(conn, key="f1")
    process_findings(conn, now=NOW, settings=settings)
    dispatch_due(conn, now=NOW, settings=settings, channels=channels)
    assert _rows(conn)["webhook"][:2] == ("dead", 1)  # was: 8 tries over minutes
    hook.statuses = [429]
    insert_finding(conn, key="f2", subject="freezer-1")
    process_findings(conn, now=NOW, settings=settings)
    dispatch_due(conn, now=NOW, settings=settings, channels=channels)
    statuses = conn.execute(
        "SELECT status FROM notifications WHERE channel = 'webhook' ORDER BY id"
    ).fetchall()
    assert statuses == [("dead",), ("pending",)]


def test_a_webhook_with_a_secret_is_signed_over_timestamp_and_body(
    conn: psycopg.Connection[Any],
    settings: ApiSettings,
    channels: dict[str, Channel],
    hook: HookServer,
) -> None:
    officer = [{"kind": "webhook", "address": f"{hook.url}/hook/o", "secret": "whsec-1"}]
    sync_registry(conn, parse_site_file(site_data(hook.url, officer_channels=officer)))
    insert_finding(conn, key="f1")
    process_findings(conn, now=NOW, settings=settings)
    dispatch_due(conn, now=NOW, settings=settings, channels=channels)
    [req] = hook.requests
    ts = int(req.headers["X-BK-Timestamp"])
    assert abs(ts - time.time()) < 60
    raw = json.dumps(req.body, ensure_ascii=False, separators=(",", ":")).encode()
    mac = hmac.new(b"whsec-1", f"{ts}.".encode() + raw, hashlib.sha256).hexdigest()
    assert req.headers["X-BK-Signature"] == f"sha256={mac}"
    assert req.headers["Idempotency-Key"] == "bk-notification-1"
