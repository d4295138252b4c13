"""Who hears about a ticket: the site's people by role (officer, director, regulator).

Every notice is one outbox row per person and channel, keyed by a ``dedupe_key`` so that a
retried transaction or a second worker never queues it twice. Notices that ask for an
acknowledgement carry a per-person signed link when ``BK_API_SECRET_KEY`` is set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.metrics import NOTIFICATIONS_ENQUEUED
from api.services.acklink import make_ack_token
from api.services.notify.message import MessageContent, TicketFacts
from api.settings import ApiSettings

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

NOTIFICATIONS_CHANNEL = "bk_notifications"

BuildContent = Callable[[str | None], MessageContent]
"""Builds a notice given the person's acknowledge link (None when links are off)."""


def ack_link(settings: ApiSettings, *, ticket_id: int, person_id: str, now: datetime) -> str | None:
    """The signed acknowledge link of ``person_id`` for ``ticket_id``; None without a secret."""
    if settings.secret_key is None:
        return None
    token = make_ack_token(
        settings.secret_key.get_secret_value(),
        ticket_id=ticket_id,
        person_id=person_id,
        expires_at=now + timedelta(hours=settings.ack_link_ttl_h),
    )
    return settings.link(f"/api/v1/ack/{token}")


def load_facts(conn: Conn, ticket_id: int, *, settings: ApiSettings) -> TicketFacts:
    """The facts of a stored ticket that its notices carry."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT t.id, t.ticket_no, t.site_id, coalesce(s.name, t.site_id) AS site_name,
                      t.rule, t.subject, t.tier, t.title, t.opened_at, t.due_at
               FROM tickets t LEFT JOIN sites s ON s.id = t.site_id WHERE t.id = %s""",
            (ticket_id,),
        ).fetchone()
    if row is None:
        raise LookupError(f"ticket {ticket_id} not found")
    return TicketFacts(
        ticket_id=int(row["id"]),
        ticket_no=str(row["ticket_no"]),
        site_id=str(row["site_id"]),
        site_name=str(row["site_name"]),
        rule=str(row["rule"]),
        subject=str(row["subject"]),
        tier=int(row["tier"]),
        title=str(row["title"]),
        opened_at=row["opened_at"],
        due_at=row["due_at"],
        link=settings.link(f"/console/tickets/{ticket_id}"),
    )


def enqueue_for_roles(
    conn: Conn,
    *,
    facts: TicketFacts,
    roles: Sequence[str],
    key: str,
    build: BuildContent,
    now: datetime,
    settings: ApiSettings,
    with_ack_link: bool = False,
) -> int:
    """Queue ``build``'s notice for every channel of the site's people in ``roles``; NOTIFY.

    ``key`` names the occasion (``opened``, ``step:0:warning``...) inside the dedupe key.
    Returns how many rows were queued now (0 when they already were, or nobody is named).
    """
    with conn.cursor(row_factory=dict_row) as cur:
        targets = cur.execute(
            """SELECT DISTINCT sp.person_id, pc.id AS channel_id, pc.kind, pc.address
               FROM site_people sp JOIN person_channels pc ON pc.person_id = sp.person_id
               WHERE sp.site_id = %s AND sp.role = ANY(%s)
               ORDER BY sp.person_id, pc.id""",
            (facts.site_id, list(roles)),
        ).fetchall()
    if not targets:
        logger.warning(
            "site %s has no %s with an alert channel; %s of ticket %s notifies nobody",
            facts.site_id,
            "/".join(roles),
            key,
            facts.ticket_no,
            extra={"site_id": facts.site_id, "ticket_id": facts.ticket_id},
        )
        return 0
    contents: dict[str, MessageContent] = {}
    inserted = 0
    for t in targets:
        person = str(t["person_id"])
        if person not in contents:
            link = (
                ack_link(settings, ticket_id=facts.ticket_id, person_id=person, now=now)
                if with_ack_link
                else None
            )
            contents[person] = build(link)
        content = contents[person]
        row = conn.execute(
            """INSERT INTO notifications (dedupe_key, ticket_id, person_id, channel, address,
                                          subject, body, payload, max_attempts,
                                          next_attempt_at, created_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (dedupe_key) DO NOTHING RETURNING id""",
            (
                f"ticket:{facts.ticket_id}:{key}:{person}:{t['channel_id']}",
                facts.ticket_id,
                person,
                t["kind"],
                t["address"],
                content.subject,
                content.body,
                Jsonb(content.payload),
                settings.max_attempts,
                now,
                now,
            ),
        ).fetchone()
        if row is not None:
            inserted += 1
            NOTIFICATIONS_ENQUEUED.labels(t["kind"]).inc()
    if inserted:
        conn.execute("SELECT pg_notify(%s, %s)", (NOTIFICATIONS_CHANNEL, str(facts.ticket_id)))
    return inserted
