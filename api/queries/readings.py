"""Reading queries: raw readings, or the 5-minute / 1-hour rollup views."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.auth.scope import SiteScope
from api.schemas import ReadingPointPublic, ReadingsPublic, Resolution

Conn = psycopg.Connection[Any]

_ROLLUP_VIEWS = {Resolution.FIVE_MIN: "readings_5m", Resolution.ONE_HOUR: "readings_1h"}


def sensor_exists(*, conn: Conn, scope: SiteScope, sensor_id: str) -> bool:
    """True when the sensor is registered at a site in ``scope``."""
    row = conn.execute(
        "SELECT 1 FROM sensors s WHERE s.id = %(id)s AND " + scope.clause("s.site_id"),
        {"id": sensor_id, **scope.params()},
    ).fetchone()
    return row is not None


def sensor_readings(
    *,
    conn: Conn,
    scope: SiteScope,
    sensor_id: str,
    from_ts: datetime,
    to_ts: datetime,
    resolution: Resolution,
    limit: int,
) -> ReadingsPublic:
    """Points of one sensor in ``[from_ts, to_ts)``, oldest first, at most ``limit``.

    A sensor outside ``scope`` has no points.
    """
    params = {
        "sensor": sensor_id,
        "from": from_ts,
        "to": to_ts,
        "limit": limit + 1,
        **scope.params(),
    }
    in_scope = (
        " AND EXISTS (SELECT 1 FROM sensors s WHERE s.id = %(sensor)s AND "
        + scope.clause("s.site_id")
        + ")"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        if resolution is Resolution.RAW:
            rows = cur.execute(
                """SELECT ts, temp_c, humidity_pct, door_open, battery_pct
                   FROM sensor_readings
                   WHERE sensor_id = %(sensor)s AND ts >= %(from)s AND ts < %(to)s"""
                + in_scope
                + " ORDER BY ts LIMIT %(limit)s",
                params,
            ).fetchall()
        else:
            view = _ROLLUP_VIEWS[resolution]  # a fixed name from our own table
            rows = cur.execute(
                f"""SELECT bucket AS ts, temp_avg AS temp_c, temp_min AS temp_min_c,
                           temp_max AS temp_max_c, n
                    FROM {view}
                    WHERE sensor_id = %(sensor)s AND bucket >= %(from)s AND bucket < %(to)s"""
                + in_scope
                + " ORDER BY bucket LIMIT %(limit)s",
                params,
            ).fetchall()
    truncated = len(rows) > limit
    return ReadingsPublic(
        sensor_id=sensor_id,
        resolution=resolution,
        from_ts=from_ts,
        to_ts=to_ts,
        truncated=truncated,
        points=[ReadingPointPublic.model_validate(r) for r in rows[:limit]],
    )
