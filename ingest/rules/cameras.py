"""The camera-offline sweep: ``camera_offline`` alarms (视频离线) from edge-box statuses.

A camera is down when its box has not been heard from for ``box_offline_after_s`` (the box
lost power or network, or crashed: its last will says ``online=false`` but arrives at once,
so silence, not the will, is what counts) or when the box's latest status reports the camera
``online=false`` (no frame for the box's ``offline_after_s``, 10 s by default). The alarm
starts at the box's last status arrival and clears at the arrival of the status that shows
the camera again (to within one sweep). A box that never reported is not judged: it is not
installed yet. Findings go to the ticket engine like a sensor's, subject = the camera, so a
box's own ``camera_offline`` violation and this alarm meet on one ticket; the alarm's span is
the camera downtime of the risk score and of the insurer's risk record.

One set-based statement each for raising and clearing, in one transaction, safe with several
workers sweeping at once (alarm and finding keys make a repeat a no-op).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import psycopg

from ingest.rules.alarms import iso_utc_sql

logger = logging.getLogger(__name__)

BOX_OFFLINE_AFTER_S = 120.0
"""Default silence after which a box's cameras are offline: four missed statuses of 30 s."""

CAMERA_OFFLINE_TIER = 2

# Each camera of a box that has reported, with whether it is down now and why.
_CAMERAS = """
cams AS (
    SELECT c.id, c.site_id, c.box_id, b.status_received_at AS heard, b.status_at,
           greatest(b.status_received_at, %(since)s)
               < %(now)s - make_interval(secs => %(after_s)s) AS silent,
           e.cam ->> 'problem' AS problem,
           COALESCE(e.cam ->> 'online' = 'false', false) AS reported_offline
    FROM cameras AS c
    JOIN edge_boxes AS b ON b.id = c.box_id
    LEFT JOIN LATERAL (
        SELECT x AS cam
        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(b.status -> 'cameras') = 'array'
                                       THEN b.status -> 'cameras' ELSE '[]'::jsonb END) AS x
        WHERE x ->> 'camera_id' = c.id
        LIMIT 1) AS e ON true
    WHERE b.status_received_at IS NOT NULL
)"""

_RAISE = f"""
WITH {_CAMERAS.strip()}, cand AS (
    SELECT * FROM cams
    WHERE (silent OR reported_offline)
      AND NOT EXISTS (SELECT 1 FROM alarms AS a
                      WHERE a.camera_id = cams.id AND a.rule = 'camera_offline'
                        AND a.status <> 'cleared')
), ins AS (
    INSERT INTO alarms (alarm_key, site_id, camera_id, rule, tier, status, started_at,
                        raised_at, details)
    SELECT c.id || ':camera_offline:' || {iso_utc_sql("c.heard")}, c.site_id, c.id,
           'camera_offline', %(tier)s, 'active', c.heard, %(now)s,
           jsonb_build_object('box_id', c.box_id,
                              'reason', CASE WHEN c.silent THEN 'box_silent'
                                             ELSE 'camera_reported_offline' END,
                              'problem', c.problem,
                              'box_offline_after_s', %(after_s)s,
                              'last_status_received_at', c.heard,
                              'last_status_at', c.status_at)
    FROM cand AS c
    ON CONFLICT (alarm_key) DO NOTHING
    RETURNING id, alarm_key, site_id, camera_id, tier, started_at, raised_at, details
)
INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at, payload)
SELECT 'alarm:' || i.id || ':raised', 'alarm_raised', i.site_id, i.camera_id,
       'camera_offline', i.tier, i.raised_at,
       jsonb_build_object('alarm_id', i.id, 'alarm_key', i.alarm_key, 'camera_id', i.camera_id,
                          'rule', 'camera_offline', 'started_at', i.started_at,
                          'raised_at', i.raised_at) || i.details
FROM ins AS i
ON CONFLICT (finding_key) DO NOTHING
"""

_CLEAR = f"""
WITH {_CAMERAS.strip()}, a AS (
    UPDATE alarms AS al SET status = 'cleared', cleared_at = greatest(c.heard, al.started_at)
    FROM cams AS c
    WHERE al.camera_id = c.id AND al.rule = 'camera_offline' AND al.status <> 'cleared'
      AND NOT c.silent AND NOT c.reported_offline AND c.heard > al.started_at
    RETURNING al.id, al.alarm_key, al.site_id, al.camera_id, al.tier, al.started_at,
              al.cleared_at AS at
)
INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at, payload)
SELECT 'alarm:' || a.id || ':cleared', 'alarm_cleared', a.site_id, a.camera_id,
       'camera_offline', a.tier, a.at,
       jsonb_build_object('alarm_id', a.id, 'alarm_key', a.alarm_key, 'camera_id', a.camera_id,
                          'rule', 'camera_offline', 'started_at', a.started_at, 'cleared_at', a.at)
FROM a
ON CONFLICT (finding_key) DO NOTHING
"""


def sweep_cameras(
    conn: psycopg.Connection[Any],
    now: datetime,
    after_s: float = BOX_OFFLINE_AFTER_S,
    listening_since: datetime | None = None,
) -> int:
    """Raise and clear ``camera_offline`` alarms; NOTIFY bk_findings if any finding was written.

    Silence is counted from ``listening_since`` at the earliest (when the sweeping worker
    could hear the boxes again), so an ingest or broker outage is not every box gone dark.

    Runs in its own transaction on ``conn`` (which must not be inside one). Returns the
    findings rows written (raised plus cleared).
    """
    since = listening_since or datetime.min.replace(tzinfo=UTC)
    params = {"now": now, "after_s": float(after_s), "tier": CAMERA_OFFLINE_TIER, "since": since}
    with conn.transaction():
        cleared = max(conn.execute(_CLEAR, params).rowcount, 0)
        raised = max(conn.execute(_RAISE, params).rowcount, 0)
        if raised or cleared:
            conn.execute("NOTIFY bk_findings")
    if raised:
        logger.warning("camera_offline raised for %d camera(s)", raised)
    if cleared:
        logger.info("camera_offline cleared for %d camera(s)", cleared)
    return raised + cleared
