"""Ticket queries: list with filters, and one ticket with its timeline."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.auth.scope import SiteScope
from api.schemas import (
    TicketDetailPublic,
    TicketEventPublic,
    TicketPublic,
    TicketsPublic,
    TicketStatus,
)

Conn = psycopg.Connection[Any]

_COLUMNS = """
t.id, t.ticket_no, t.site_id, t.source, t.rule, t.subject, t.tier, t.status, t.title,
t.opened_at, t.due_at, t.acknowledged_at, t.closed_at, t.escalation_level, t.occurrences,
t.last_occurrence_at, t.close_proposed_at, t.details,
(t.status <> 'closed' AND t.due_at < now()) AS overdue
"""

_FILTER = """
WHERE (%(site)s::text IS NULL OR t.site_id = %(site)s)
  AND (%(status)s::text IS NULL OR t.status = %(status)s)
  AND (%(rule)s::text IS NULL OR t.rule = %(rule)s)
  AND (%(tier)s::smallint IS NULL OR t.tier = %(tier)s)
  AND {scope}
"""


def list_tickets(
    *,
    conn: Conn,
    scope: SiteScope,
    site_id: str | None,
    status: TicketStatus | None,
    rule: str | None,
    tier: int | None,
    limit: int,
    offset: int,
) -> TicketsPublic:
    """One page of tickets matching the filters, newest opened first."""
    params = {
        "site": site_id,
        "status": status.value if status else None,
        "rule": rule,
        "tier": tier,
        "limit": limit,
        "offset": offset,
        **scope.params(),
    }
    where = _FILTER.format(scope=scope.clause("t.site_id"))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_COLUMNS} FROM tickets t {where} "
            "ORDER BY t.opened_at DESC, t.id DESC LIMIT %(limit)s OFFSET %(offset)s",
            params,
        ).fetchall()
        total = cur.execute(f"SELECT count(*) AS n FROM tickets t {where}", params).fetchone()
    return TicketsPublic(
        data=[TicketPublic.model_validate(r) for r in rows],
        count=int(total["n"]) if total else 0,
        limit=limit,
        offset=offset,
    )


def get_ticket(*, conn: Conn, scope: SiteScope, ticket_id: int) -> TicketDetailPublic | None:
    """One ticket with its events (oldest first) and finding ids, or None (also out of scope)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {_COLUMNS} FROM tickets t WHERE t.id = %(id)s AND "
            + scope.clause("t.site_id"),
            {"id": ticket_id, **scope.params()},
        )
        ticket = row.fetchone()
        if ticket is None:
            return None
        events = cur.execute(
            "SELECT id, at, actor, kind, note, data FROM ticket_events "
            "WHERE ticket_id = %s ORDER BY id",
            (ticket_id,),
        ).fetchall()
        findings = cur.execute(
            "SELECT id FROM findings WHERE ticket_id = %s ORDER BY id", (ticket_id,)
        ).fetchall()
    return TicketDetailPublic.model_validate(
        {
            **ticket,
            "events": [TicketEventPublic.model_validate(e) for e in events],
            "finding_ids": [int(f["id"]) for f in findings],
        }
    )
