"""What a notification says: one bilingual text and one JSON payload, built once at enqueue.

The text (email, SMS, WeCom/DingTalk, the webhook's ``text``) shows times as the region's
wall-clock time with the zone named (``BK_TIME_ZONE``, see bkcommon.localtime), because an
officer reads it away from the console; the JSON payload keeps RFC 3339 instants in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.services.labels import TIER_LABELS, advice_for
from bkcommon.localtime import fmt_local
from bkcommon.timeutil import rfc3339

PAYLOAD_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class TicketFacts:
    """The facts of a ticket that a notification about it carries."""

    ticket_id: int
    ticket_no: str
    site_id: str
    site_name: str
    rule: str
    subject: str
    tier: int
    title: str
    opened_at: datetime
    due_at: datetime
    link: str


@dataclass(frozen=True, slots=True)
class MessageContent:
    """Subject line, plain-text body (zh + en) and JSON payload of one notification."""

    subject: str
    body: str
    payload: dict[str, Any]


def _payload(facts: TicketFacts, event: str, ack_link: str | None) -> dict[str, Any]:
    """The JSON payload every ticket notice carries (webhook receivers parse it)."""
    payload: dict[str, Any] = {
        "schema_version": PAYLOAD_SCHEMA_VERSION,
        "event": event,
        "ticket_id": facts.ticket_id,
        "ticket_no": facts.ticket_no,
        "site_id": facts.site_id,
        "site_name": facts.site_name,
        "rule": facts.rule,
        "subject": facts.subject,
        "tier": facts.tier,
        "title": facts.title,
        "opened_at": rfc3339(facts.opened_at),
        "due_at": rfc3339(facts.due_at),
        "link": facts.link,
    }
    if ack_link:
        payload["ack_link"] = ack_link
    return payload


def ticket_opened(facts: TicketFacts, ack_link: str | None = None) -> MessageContent:
    """Content of the notice sent to a site's officer when a rectification ticket opens."""
    tier_zh, tier_en = TIER_LABELS.get(facts.tier, ("", ""))
    do_zh, do_en = advice_for(facts.rule)
    due = fmt_local(facts.due_at, show_zone=True)
    subject = f"【整改通知 Rectification notice】{facts.ticket_no} {facts.title}"
    body = "\n".join(
        [
            f"【整改通知 Rectification notice】{facts.ticket_no}",
            f"食堂 Site: {facts.site_name}",  # the name people know; the id is in the payload
            f"问题 Problem: {facts.title}",
            f"等级 Tier: {facts.tier}（{tier_zh} {tier_en}）",
            f"整改期限 Due: {due}",
            f"整改要求 What to do: {do_zh} {do_en}",  # read away from the console
            f"详情 Details: {facts.link}",
        ]
        + ([f"确认收到 Acknowledge: {ack_link}"] if ack_link else [])
    )
    payload = _payload(facts, "ticket_opened", ack_link)
    return MessageContent(subject=subject, body=body, payload=payload)


EVENT_HEADINGS: dict[str, tuple[str, str]] = {
    "reminder": ("整改提醒", "Reminder: deadline approaching"),
    "warning": ("整改预警", "Warning: deadline reached"),
    "director": ("未确认升级", "Escalated: not acknowledged"),
    "regulator": ("逾期升级", "Escalated: overdue"),
    "yellow_card": ("黄牌警告", "Yellow card: tier-1 item overdue"),
    "red_card": ("红牌警告", "Red card: tier-1 item long overdue"),
    "rectified": ("整改已提交待复核", "Rectification submitted, please verify"),
    "rejected": ("整改被驳回", "Rectification rejected"),
    "reopened": ("整改单重新打开", "Ticket reopened"),
}
"""Event of a ticket's life or escalation → (zh, en) heading of its notice."""


def ticket_event(
    facts: TicketFacts, event: str, *, note: str = "", ack_link: str | None = None
) -> MessageContent:
    """Content of a notice about an escalation step or a state change of a ticket."""
    zh, en = EVENT_HEADINGS.get(event, (event, event))
    due = fmt_local(facts.due_at, show_zone=True)
    subject = f"【{zh} {en}】{facts.ticket_no} {facts.title}"
    lines = [
        f"【{zh} {en}】{facts.ticket_no}",
        f"食堂 Site: {facts.site_name}",  # the name people know; the id is in the payload
        f"问题 Problem: {facts.title}",
        f"整改期限 Due: {due}",
    ]
    if note:
        lines.append(f"说明 Note: {note}")
    lines.append(f"详情 Details: {facts.link}")
    if ack_link:
        lines.append(f"确认收到 Acknowledge: {ack_link}")
    payload = _payload(facts, f"ticket_{event}", ack_link)
    payload["note"] = note
    return MessageContent(subject=subject, body="\n".join(lines), payload=payload)


def fit_utf8(text: str, max_bytes: int, *, keep_tail: int = 0) -> str:
    r"""``text`` cut to at most ``max_bytes`` of UTF-8, never inside a character, with "…"
    where it was cut; the last ``keep_tail`` lines (the links) are kept whole when they fit.

    Chat robots refuse a longer text outright (WeCom: ``text.content`` at most 2048 bytes,
    errcode 40058 in an HTTP 200), so an over-long notice would never arrive at all.

    >>> fit_utf8("整改" * 10, 13)
    '整改整…'
    >>> fit_utf8("问题 " + "长" * 50 + "\n详情 https://x/1", 40, keep_tail=1)
    '问题 长长长…\n详情 https://x/1'
    """
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    lines = text.split("\n")
    tail = "\n".join(lines[len(lines) - keep_tail :]) if 0 < keep_tail < len(lines) else ""
    if tail and len(tail.encode()) + 8 <= max_bytes:
        head = "\n".join(lines[: len(lines) - keep_tail])
        return fit_utf8(head, max_bytes - len(tail.encode()) - 1) + "\n" + tail
    room = max_bytes - len("…".encode())
    return data[: max(0, room)].decode("utf-8", errors="ignore") + "…"


def link_lines(body: str) -> int:
    """How many of the body's last lines carry a link (details, acknowledge)."""
    n = 0
    for line in reversed(body.split("\n")):
        if "://" not in line:
            break
        n += 1
    return n
