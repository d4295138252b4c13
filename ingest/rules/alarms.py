"""Alarm rows and their findings: raise, clear, peak updates and acknowledgement.

Every write is idempotent: an alarm is named by ``alarm_key`` (sensor, rule, condition
start) and its findings by ``alarm:<id>:raised`` / ``alarm:<id>:cleared``, so a replay
writes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest.rules.excursion import Rule, Transition
from ingest.types import SensorInfo

logger = logging.getLogger(__name__)


def iso_utc_sql(expr: str) -> str:
    """Return SQL formatting the timestamptz ``expr`` exactly as :func:`iso_utc` does."""
    return f"""to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


def iso_utc(ts: datetime) -> str:
    """Format an aware time as UTC ISO 8601 with microseconds (stable text for keys)."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def alarm_key(sensor_id: str, rule: str, started_at: datetime) -> str:
    """Return the idempotency key of a sensor's ``rule`` alarm whose condition began then."""
    return f"{sensor_id}:{rule}:{iso_utc(started_at)}"


def tier_for(rule: Rule, sensor: SensorInfo) -> int:
    """Return the severity tier (1 = most urgent) of ``rule`` for this sensor."""
    p = sensor.params
    if rule is Rule.LOW_BATTERY:
        return p.battery_tier
    if rule is Rule.SENSOR_OFFLINE:
        return p.offline_tier
    return p.excursion_tier


_RAISE = """
WITH a AS (
    INSERT INTO alarms (alarm_key, site_id, sensor_id, rule, tier, status, started_at,
                        raised_at, peak_temp_c, details)
    VALUES (%(key)s, %(site)s, %(sensor)s, %(rule)s, %(tier)s, 'active', %(started)s,
            %(at)s, %(peak)s, %(details)s)
    ON CONFLICT (alarm_key) DO NOTHING
    RETURNING id
)
INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at, payload)
SELECT 'alarm:' || a.id || ':raised', 'alarm_raised', %(site)s, %(sensor)s, %(rule)s, %(tier)s,
       %(at)s, %(payload)s || jsonb_build_object('alarm_id', a.id)
FROM a
ON CONFLICT (finding_key) DO NOTHING
"""

_CLEAR = """
WITH a AS (
    UPDATE alarms SET status = 'cleared', cleared_at = %(at)s
    WHERE alarm_key = %(key)s AND status <> 'cleared'
    RETURNING id, site_id, sensor_id, rule, tier, peak_temp_c
)
INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at, payload)
SELECT 'alarm:' || a.id || ':cleared', 'alarm_cleared', a.site_id, a.sensor_id, a.rule, a.tier,
       %(at)s, %(payload)s || jsonb_build_object('alarm_id', a.id, 'peak_temp_c', a.peak_temp_c)
FROM a
ON CONFLICT (finding_key) DO NOTHING
"""


def _payload(sensor: SensorInfo, t: Transition) -> dict[str, Any]:
    value_key = "battery_pct" if t.rule is Rule.LOW_BATTERY else "temp_c"
    limit_key = "low_battery_pct" if t.rule is Rule.LOW_BATTERY else "limit_c"
    return {
        "alarm_key": alarm_key(sensor.sensor_id, t.rule, t.started_at),
        "sensor_id": sensor.sensor_id,
        "profile": sensor.profile.value,
        "rule": t.rule.value,
        value_key: t.value,
        limit_key: t.limit,
        "started_at": iso_utc(t.started_at),
        ("raised_at" if t.kind == "raise" else "cleared_at"): iso_utc(t.at),
    }


def write_transition(cur: psycopg.Cursor[Any], sensor: SensorInfo, t: Transition) -> int:
    """Write one raise or clear (alarm row + finding); return the findings rows written."""
    payload = _payload(sensor, t)
    key = payload["alarm_key"]
    if t.kind == "raise":
        if t.rule is not Rule.LOW_BATTERY:
            payload["peak_temp_c"] = t.peak_c
            payload["held_s"] = t.held_s
        details = {
            "limit": t.limit,
            "held_s": t.held_s,
            "value": t.value,
            "profile": sensor.profile.value,
            "params": sensor.params.model_dump(),
        }
        cur.execute(
            _RAISE,
            {
                "key": key,
                "site": sensor.site_id,
                "sensor": sensor.sensor_id,
                "rule": t.rule.value,
                "tier": tier_for(t.rule, sensor),
                "started": t.started_at,
                "at": t.at,
                "peak": t.peak_c,
                "details": Jsonb(details),
                "payload": Jsonb(payload),
            },
        )
        n = max(cur.rowcount, 0)
        if n:
            logger.info("alarm raised: %s (sensor %s, value %s)", key, sensor.sensor_id, t.value)
        return n
    cur.execute(_CLEAR, {"key": key, "at": t.at, "payload": Jsonb(payload)})
    n = max(cur.rowcount, 0)
    if n:
        logger.info("alarm cleared: %s (sensor %s, value %s)", key, sensor.sensor_id, t.value)
    return n


def update_peaks(cur: psycopg.Cursor[Any], peaks: dict[str, float]) -> None:
    """Set ``peak_temp_c`` of open alarms by alarm key, in one statement."""
    if not peaks:
        return
    keys = list(peaks)
    cur.execute(
        """UPDATE alarms AS a SET peak_temp_c = v.peak
           FROM (SELECT unnest(%s::text[]) AS k, unnest(%s::float8[]) AS peak) AS v
           WHERE a.alarm_key = v.k AND a.status <> 'cleared'
             AND a.peak_temp_c IS DISTINCT FROM v.peak""",
        (keys, [peaks[k] for k in keys]),
    )


_CLEAR_OFFLINE = """
WITH v AS (
    SELECT unnest(%(sensors)s::text[]) AS sensor_id, unnest(%(ts)s::timestamptz[]) AS ts
), a AS (
    UPDATE alarms AS al SET status = 'cleared', cleared_at = v.ts
    FROM v
    WHERE al.sensor_id = v.sensor_id AND al.rule = 'sensor_offline'
      AND al.status <> 'cleared' AND al.started_at < v.ts
    RETURNING al.id, al.alarm_key, al.site_id, al.sensor_id, al.tier, al.started_at, v.ts AS at
)
INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at, payload)
SELECT 'alarm:' || a.id || ':cleared', 'alarm_cleared', a.site_id, a.sensor_id,
       'sensor_offline', a.tier, a.at,
       jsonb_build_object('alarm_id', a.id, 'alarm_key', a.alarm_key, 'sensor_id', a.sensor_id,
                          'rule', 'sensor_offline', 'started_at', a.started_at, 'cleared_at', a.at)
FROM a
ON CONFLICT (finding_key) DO NOTHING
"""


def clear_offline(cur: psycopg.Cursor[Any], arrived: dict[str, datetime]) -> int:
    """Clear open ``sensor_offline`` alarms of sensors heard from after the alarm's start.

    ``arrived`` maps sensor id to the newest receive time of its new readings in the
    batch; the alarm started at the last receive time before the silence, so any reading
    that arrives later clears it at its arrival, whatever its own timestamp (a gateway
    replaying an old backlog, a sensor whose clock lags): offline means "not heard from".
    One statement.
    """
    if not arrived:
        return 0
    ids = list(arrived)
    cur.execute(_CLEAR_OFFLINE, {"sensors": ids, "ts": [arrived[i] for i in ids]})
    n = max(cur.rowcount, 0)
    if n:
        logger.info("sensor_offline cleared for %d sensor(s)", n)
    return n


def acknowledge_alarm(conn: psycopg.Connection[Any], alarm_id: int, by: str) -> bool:
    """Mark an active alarm acknowledged (it still clears by itself); False if not active."""
    with conn.transaction():
        row = conn.execute(
            """UPDATE alarms SET status = 'acknowledged', acknowledged_at = now(),
                      acknowledged_by = %s
               WHERE id = %s AND status = 'active' RETURNING id""",
            (by, alarm_id),
        ).fetchone()
        if row is None:
            return False
        conn.execute(
            "INSERT INTO audit_log (actor, action, target) VALUES (%s, 'alarm.acknowledge', %s)",
            (by, f"alarm:{alarm_id}"),
        )
    logger.info("alarm %s acknowledged by %s", alarm_id, by)
    return True


def open_alarm_ids(conn: psycopg.Connection[Any], sensor_ids: Sequence[str]) -> list[int]:
    """Return ids of the sensors' alarms that are not cleared (for consoles and tests)."""
    rows = conn.execute(
        "SELECT id FROM alarms WHERE sensor_id = ANY(%s) AND status <> 'cleared' ORDER BY id",
        (list(sensor_ids),),
    ).fetchall()
    return [int(r[0]) for r in rows]
