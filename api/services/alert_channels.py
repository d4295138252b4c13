"""The alert channels of the people of a caller's sites, masked, and a test send through one.

A channel that nobody has tried fails on the day of the first real alarm. The console lists
each person's channels (addresses masked: a webhook URL or robot key is a credential) and
sends a clearly marked test message through the very sender code the dispatcher uses, so
the answer (delivered, or the channel's own error) is the one a real notice would get.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import psycopg

from api.auth.scope import SiteScope
from api.services.notify.base import OutgoingMessage
from api.services.notify.channels import build_channels, close_channels
from api.services.notify.dispatcher import attempt
from api.settings import ApiSettings
from bkcommon.localtime import fmt_local
from bkcommon.timeutil import rfc3339

Conn = psycopg.Connection[Any]

TEST_EVENT = "channel_test"


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """One channel of one person: its place in the person's list, kind and address."""

    person_id: str
    person_name: str
    index: int
    kind: str
    address: str
    sites: tuple[tuple[str, str], ...]  # (site id, role) of the person, in scope


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What a test send gave: delivered or not, the channel's words, and how long it took."""

    delivered: bool
    detail: str
    duration_ms: float


def mask_address(kind: str, address: str) -> str:
    """The address with its secret part hidden: keep enough to recognise it.

    Example:
        >>> mask_address("webhook", "https://hooks.example/robot/send?key=abcdef123456")
        'https://hooks.example/…3456'
        >>> mask_address("email", "officer-1@school.example")
        'o…1@school.example'
        >>> mask_address("sms", "+8613800138000")
        '+86…8000'
    """
    if kind == "email":
        local, _, domain = address.partition("@")
        head = local[:1] + "…" + local[-1:] if len(local) > 2 else "…"
        return f"{head}@{domain}"
    if kind == "sms":
        digits = re.sub(r"\s", "", address)
        return digits[:3] + "…" + digits[-4:] if len(digits) > 7 else "…"
    parts = urlsplit(address)
    rest = address.removeprefix(f"{parts.scheme}://{parts.netloc}")
    tail = rest[-4:] if len(rest) > 12 else ""
    return f"{parts.scheme}://{parts.netloc}/…{tail}" if parts.netloc else "…"


def list_channels(conn: Conn, *, scope: SiteScope) -> list[ChannelRow]:
    """Every channel of every person named at a site in ``scope``, people by id.

    ``index`` counts a person's channels from 0 in the order the registry stored them.
    """
    rows = conn.execute(
        f"""WITH linked AS (
                SELECT sp.person_id,
                       array_agg(sp.site_id || ' ' || sp.role ORDER BY sp.site_id, sp.role) AS sr
                FROM site_people sp WHERE {scope.clause("sp.site_id")}
                GROUP BY sp.person_id)
            SELECT p.id, p.name, pc.kind, pc.address, l.sr,
                   row_number() OVER (PARTITION BY pc.person_id ORDER BY pc.id) - 1 AS idx
            FROM linked l JOIN people p ON p.id = l.person_id
            JOIN person_channels pc ON pc.person_id = p.id
            ORDER BY p.id, pc.id""",
        scope.params(),
    ).fetchall()
    return [
        ChannelRow(
            person_id=str(r[0]),
            person_name=str(r[1]),
            index=int(r[5]),
            kind=str(r[2]),
            address=str(r[3]),
            sites=tuple(_site_role(str(x)) for x in r[4]),
        )
        for r in rows
    ]


def _site_role(pair: str) -> tuple[str, str]:
    site, _, role = pair.partition(" ")
    return site, role


def find_channel(
    conn: Conn, *, person_id: str, index: int, scope: SiteScope
) -> tuple[ChannelRow, str | None] | None:
    """The channel ``index`` of ``person_id`` with its secret, if the person is in ``scope``."""
    for row in list_channels(conn, scope=scope):
        if row.person_id == person_id and row.index == index:
            secret = conn.execute(
                """SELECT secret FROM person_channels WHERE person_id = %s AND kind = %s
                   AND address = %s""",
                (person_id, row.kind, row.address),
            ).fetchone()
            return row, (secret[0] if secret else None)
    return None


def build_test_message(
    row: ChannelRow, secret: str | None, *, sent_by: str, now: datetime, link: str
) -> OutgoingMessage:
    """The test notice: marked as a test in subject, body and payload, so nobody acts on it."""
    subject = "【测试 TEST】明厨亮灶告警通道测试 Alert channel test"
    body = "\n".join(
        [
            subject,
            f"接收人 To: {row.person_name} ({row.person_id})",
            f"通道 Channel: {row.kind}",
            f"发送人 Sent by: {sent_by}",
            f"时间 At: {fmt_local(now, seconds=True, show_zone=True)}",
            "这是一条测试消息，无需处理。This is a test message; no action is needed.",
            f"控制台 Console: {link}",
        ]
    )
    payload = {
        "schema_version": 1,
        "event": TEST_EVENT,
        "test": True,
        "person_id": row.person_id,
        "channel": row.kind,
        "sent_by": sent_by,
        "sent_at": rfc3339(now),
        "link": link,
    }
    return OutgoingMessage(
        notification_id=0,
        channel=row.kind,
        address=row.address,
        subject=subject,
        body=body,
        payload=payload,
        secret=secret,
    )


def send_test(
    row: ChannelRow, secret: str | None, *, sent_by: str, now: datetime, settings: ApiSettings
) -> SendOutcome:
    """Send the test notice now through the dispatcher's sender of the channel's kind."""
    link = settings.link("/console/settings")
    msg = build_test_message(row, secret, sent_by=sent_by, now=now, link=link)
    channels = build_channels(settings)
    try:
        result = attempt(msg, channels)
    finally:
        close_channels(channels)
    return SendOutcome(delivered=result.ok, detail=result.detail, duration_ms=result.duration_ms)
