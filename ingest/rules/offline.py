"""The sensor-offline sweep: one set-based statement raising alarms for silent sensors.

"Silent" is judged on arrival: ``sensors.last_received_at`` (when the ingest worker last
received a new reading of the sensor) or, for a sensor never heard from, its registration
time. The readings' own timestamps do not count: a sensor whose clock lags is still
reporting, and a gateway replaying a backlog of old readings has just been heard from.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import psycopg

from ingest.rules.alarms import iso_utc_sql

logger = logging.getLogger(__name__)

# Candidates are locked with SKIP LOCKED: a sensor whose row a writer is updating
# (last_received_at) is receiving readings, and a sensor another sweep holds is that
# sweep's. alarm_key (sensor, rule, last receive time) makes a repeat a no-op: one alarm
# per silence, and the next silence (after a reading arrived) has a new key.
_SWEEP = f"""
WITH cand AS (
    SELECT s.id, s.site_id,
           COALESCE(s.last_received_at, s.updated_at) AS ref,
           s.last_reading_at, s.last_received_at,
           s.last_received_at IS NULL AS never_seen,
           COALESCE((s.params->>'offline_after_s')::int, 600) AS after_s,
           COALESCE((s.params->>'offline_tier')::int, 2) AS tier
    FROM sensors AS s
    WHERE s.active
      AND greatest(COALESCE(s.last_received_at, s.updated_at), %(since)s) < %(now)s
          - make_interval(secs => COALESCE((s.params->>'offline_after_s')::int, 600))
      AND NOT EXISTS (SELECT 1 FROM alarms AS a
                      WHERE a.sensor_id = s.id AND a.rule = 'sensor_offline'
                        AND a.status <> 'cleared')
    ORDER BY s.id
    FOR UPDATE OF s SKIP LOCKED
), ins AS (
    INSERT INTO alarms (alarm_key, site_id, sensor_id, rule, tier, status, started_at,
                        raised_at, details)
    SELECT c.id || ':sensor_offline:' || {iso_utc_sql("c.ref")}, c.site_id, c.id,
           'sensor_offline', c.tier, 'active', c.ref, %(now)s,
           jsonb_build_object('offline_after_s', c.after_s,
                              'last_received_at', c.last_received_at,
                              'last_reading_at', c.last_reading_at,
                              'never_seen', c.never_seen)
    FROM cand AS c
    ON CONFLICT (alarm_key) DO NOTHING
    RETURNING id, alarm_key, site_id, sensor_id, tier, started_at, raised_at, details
)
INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at, payload)
SELECT 'alarm:' || i.id || ':raised', 'alarm_raised', i.site_id, i.sensor_id,
       'sensor_offline', i.tier, i.raised_at,
       jsonb_build_object('alarm_id', i.id, 'alarm_key', i.alarm_key, 'sensor_id', i.sensor_id,
                          'rule', 'sensor_offline', 'started_at', i.started_at,
                          'raised_at', i.raised_at) || i.details
FROM ins AS i
ON CONFLICT (finding_key) DO NOTHING
"""


def sweep_offline(
    conn: psycopg.Connection[Any], now: datetime, listening_since: datetime | None = None
) -> int:
    """Raise ``sensor_offline`` for active sensors silent past ``offline_after_s``; NOTIFY if any.

    Silent means no new reading arrived (receive time, not reading time) for that long,
    counted from ``listening_since`` at the earliest (when the sweeping worker could hear the
    sensors again: after an ingest or broker outage the sensors are not all silent, the
    platform was deaf); the alarm starts at the last arrival (or at registration,
    ``never_seen``).

    Runs in its own transaction on ``conn`` (which must not be inside one); safe with
    several workers sweeping at once. Returns the findings rows written.
    """
    with conn.transaction():
        since = listening_since or datetime.min.replace(tzinfo=UTC)
        cur = conn.execute(_SWEEP, {"now": now, "since": since})
        n = max(cur.rowcount, 0)
        if n:
            conn.execute("NOTIFY bk_findings")
    if n:
        logger.warning("sensor_offline raised for %d sensor(s)", n)
    return n
