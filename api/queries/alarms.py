"""Alarm queries: list with filters, fetch one, acknowledge."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

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
"""


def list_alarms(
    *,
    conn: Conn,
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
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _SELECT + _FILTER + " ORDER BY a.raised_at DESC, a.id DESC LIMIT %(limit)s "
            "OFFSET %(offset)s",
            params,
        ).fetchall()
        total = cur.execute("SELECT count(*) AS n FROM alarms a " + _FILTER, params).fetchone()
    return AlarmsPublic(
        data=[AlarmPublic.model_validate(r) for r in rows],
        count=int(total["n"]) if total else 0,
        limit=limit,
        offset=offset,
    )


def get_alarm(*, conn: Conn, alarm_id: int) -> AlarmPublic | None:
    """One alarm by id, or None."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_SELECT + " WHERE a.id = %s", (alarm_id,)).fetchone()
    return None if row is None else AlarmPublic.model_validate(row)


def acknowledge_alarm(
    *, conn: Conn, alarm_id: int, by: str, note: str, now: datetime
) -> tuple[AlarmPublic | None, bool]:
    """Mark an active alarm acknowledged; return (alarm, changed). Idempotent for repeats."""
    with conn.transaction():
        row = conn.execute(
            """UPDATE alarms SET status = 'acknowledged', acknowledged_at = %s,
                   acknowledged_by = %s
               WHERE id = %s AND status = 'active' RETURNING id""",
            (now, by, alarm_id),
        ).fetchone()
        if row is not None:
            conn.execute(
                "INSERT INTO audit_log (at, actor, action, target, data) "
                "VALUES (%s, %s, 'alarm.acknowledge', %s, %s)",
                (now, by, f"alarm:{alarm_id}", Jsonb({"note": note})),
            )
    return get_alarm(conn=conn, alarm_id=alarm_id), row is not None
