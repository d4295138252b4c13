"""Notification queries: the outbox with each row's delivery log."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.auth.scope import SiteScope
from api.schemas import NotificationPublic, NotificationsPublic
from api.services.alert_channels import mask_address

Conn = psycopg.Connection[Any]

_FILTER = """
WHERE (%(ticket)s::bigint IS NULL OR n.ticket_id = %(ticket)s)
  AND (%(status)s::text IS NULL OR n.status = %(status)s)
  AND (%(channel)s::text IS NULL OR n.channel = %(channel)s)
  AND (%(scope_all)s OR EXISTS (SELECT 1 FROM tickets t WHERE t.id = n.ticket_id AND {scope}))
"""


def list_notifications(
    *,
    conn: Conn,
    scope: SiteScope,
    ticket_id: int | None,
    status: str | None,
    channel: str | None,
    limit: int,
    offset: int,
) -> NotificationsPublic:
    """One page of notifications, newest first, each with its attempts (oldest first).

    A notification is in ``scope`` through its ticket's site; one without a ticket is
    seen only with every site in scope.
    """
    params = {
        "ticket": ticket_id,
        "status": status,
        "channel": channel,
        "limit": limit,
        "offset": offset,
        **scope.params(),
    }
    where = _FILTER.format(scope=scope.clause("t.site_id"))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"""SELECT n.id, n.ticket_id, n.person_id, n.channel, n.address, n.subject,
                       n.status, n.attempts, n.max_attempts, n.next_attempt_at, n.last_error,
                       n.created_at, n.sent_at,
                       COALESCE((SELECT json_agg(json_build_object(
                                    'id', a.id, 'at', a.at, 'ok', a.ok, 'detail', a.detail,
                                    'duration_ms', a.duration_ms) ORDER BY a.id)
                                 FROM notification_attempts a
                                 WHERE a.notification_id = n.id), '[]'::json) AS log
                FROM notifications n {where}
                ORDER BY n.created_at DESC, n.id DESC LIMIT %(limit)s OFFSET %(offset)s""",
            params,
        ).fetchall()
        total = cur.execute(f"SELECT count(*) AS n FROM notifications n {where}", params).fetchone()
    data = [
        # masked as the channels page masks them: a phone number, an e-mail address or a
        # robot's secret in a webhook's path is not for every reader of the outbox
        NotificationPublic.model_validate(
            {**r, "address": mask_address(str(r["channel"]), str(r["address"]))}
        )
        for r in rows
    ]
    return NotificationsPublic(
        data=data, count=int(total["n"]) if total else 0, limit=limit, offset=offset
    )
