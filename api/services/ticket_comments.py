"""Comments on a ticket: a remark in its timeline that changes nothing else.

People working a ticket talk about it (a question to the canteen, a hint from the
regulator); keeping that in the append-only timeline beside the state changes means the
whole story of the ticket is in one place and can never be edited after the fact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from api.auth.scope import SiteScope
from api.services.lifecycle import Actor, TicketNotFoundError

Conn = psycopg.Connection[Any]

COMMENT_KIND = "comment"
"""The ``ticket_events.kind`` of a comment (the column has no check constraint)."""


def add_comment(
    conn: Conn, *, ticket_id: int, text: str, actor: Actor, scope: SiteScope, now: datetime
) -> int:
    """Append ``text`` to the timeline of a ticket in ``scope``; return the event id.

    Raises TicketNotFoundError when the ticket does not exist or is outside ``scope``.
    """
    data: dict[str, Any] = {"role": actor.role.value}
    if actor.user_id:
        data["user_id"] = actor.user_id
    if actor.person_id:
        data["person_id"] = actor.person_id
    with conn.transaction():
        row = conn.execute(
            f"""INSERT INTO ticket_events (ticket_id, at, actor, kind, note, data)
                SELECT t.id, %(at)s, %(actor)s, %(kind)s, %(note)s, %(data)s
                FROM tickets t WHERE t.id = %(id)s AND {scope.clause("t.site_id")}
                RETURNING id""",
            {
                "id": ticket_id,
                "at": now,
                "actor": actor.name,
                "kind": COMMENT_KIND,
                "note": text,
                "data": Jsonb(data),
                **scope.params(),
            },
        ).fetchone()
    if row is None:
        raise TicketNotFoundError(f"ticket {ticket_id} not found")
    return int(row[0])
