"""Alarm queries: list with filters, fetch one, acknowledge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.auth.scope import SiteScope
from api.schemas import AlarmPublic, AlarmsPublic, AlarmStatus

Conn = psycopg.Connection[Any]

_SELECT = """
SELECT a.id, a.alarm_key, a.site_id, a.sensor_id, a.camera_id, a.rule, a.tier, a.status,
       a.started_at, a.raised_at, a.cleared_at, a.acknowledged_at, a.acknowledged_by,
       a.peak_temp_c, a.details,
       (SELECT f.ticket_id FROM findings f
        WHERE f.finding_key = 'alarm:' || a.id || ':raised') AS ticket_id
FROM alarms a
"""

_FILTER = """
WHERE (%(site)s::text IS NULL OR a.site_id = %(site)s)
  AND (%(status)s::text IS NULL OR a.status = %(status)s)
  AND (%(rule)s::text IS NULL OR a.rule = %(rule)s)
  AND {scope}
"""


def list_alarms(
    *,
    conn: Conn,
    scope: SiteScope,
    site_id: str | None,
    status: AlarmStatus | None,
    rule: str | None,
    limit: int,
    offset: int,
) -> AlarmsPublic:
    """One page of alarms matching the filters, newest raised first."""
    params = {
        "site": site_id,
        "status": status.value if status else None,
        "rule": rule,
        "limit": limit,
        "offset": offset,
        **scope.params(),
    }
    where = _FILTER.format(scope=scope.clause("a.site_id"))
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _SELECT + where + " ORDER BY a.raised_at DESC, a.id DESC LIMIT %(limit)s "
            "OFFSET %(offset)s",
            params,
        ).fetchall()
        total = cur.execute("SELECT count(*) AS n FROM alarms a " + where, params).fetchone()
    return AlarmsPublic(
        data=[AlarmPublic.model_validate(r) for r in rows],
        count=int(total["n"]) if total else 0,
        limit=limit,
        offset=offset,
    )


def get_alarm(*, conn: Conn, scope: SiteScope, alarm_id: int) -> AlarmPublic | None:
    """One alarm by id, or None (also when it is outside ``scope``)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            _SELECT + " WHERE a.id = %(id)s AND " + scope.clause("a.site_id"),
            {"id": alarm_id, **scope.params()},
        ).fetchone()
    return None if row is None else AlarmPublic.model_validate(row)


def acknowledge_alarm(
    *,
    conn: Conn,
    scope: SiteScope,
    alarm_id: int,
    by: str,
    actor: str,
    note: str,
    now: datetime,
) -> tuple[AlarmPublic | None, bool]:
    """Mark an active alarm in ``scope`` acknowledged; return (alarm, changed).

    Idempotent for repeats; ``by`` is recorded on the alarm, ``actor`` (the signed-in
    user) in the audit log. An alarm outside ``scope`` is neither changed nor returned.
    """
    with conn.transaction():
        row = conn.execute(
            """UPDATE alarms a SET status = 'acknowledged', acknowledged_at = %(now)s,
                   acknowledged_by = %(by)s
               WHERE a.id = %(id)s AND a.status = 'active' AND """
            + scope.clause("a.site_id")
            + " RETURNING a.id",
            {"now": now, "by": by, "id": alarm_id, **scope.params()},
        ).fetchone()
        if row is not None:
            conn.execute(
                "INSERT INTO audit_log (at, actor, action, target, data) "
                "VALUES (%s, %s, 'alarm.acknowledge', %s, %s)",
                (now, actor, f"alarm:{alarm_id}", Jsonb({"note": note, "by": by})),
            )
    return get_alarm(conn=conn, scope=scope, alarm_id=alarm_id), row is not None
