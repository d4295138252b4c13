"""An incident's sensor trace, kept for as long as its claim may be argued.

A claim's evidence chain includes the readings of the site's sensors from 24 h before to
24 h after the incident (``insurance.BUNDLE_WINDOW``). On TimescaleDB raw readings are
dropped after 400 days (the retention policy), and a claim, or the court case after it,
can outlast that. So once an incident's window has closed, its readings are copied into
``incident_sensor_readings`` (an ordinary table that nothing deletes from), and copied again
on each run for ``LATE_GRACE`` more, since a gateway that was offline delivers its buffered
readings late; after that the incident is marked kept. The claim bundle reads the raw
readings and the kept ones together, so it is whole however old the incident is.

Idempotent (``ON CONFLICT DO NOTHING``): several worker processes may run it at once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import psycopg

from api.services.insurance import BUNDLE_WINDOW

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

LATE_GRACE = timedelta(days=7)
"""How long after the window closed late readings are still copied (a gateway's buffer)."""

INTERVAL_S = 3600.0
"""How often the worker runs (a window closes once a day at most per incident)."""


def keep_incident_traces(conn: Conn, *, now: datetime) -> int:
    """Copy the readings of every closed, not yet kept incident window; mark those whose late
    grace has passed. Returns how many readings were copied (0: nothing new)."""
    with conn.transaction():
        copied = conn.execute(
            """INSERT INTO incident_sensor_readings
                   (incident_id, sensor_id, ts, temp_c, humidity_pct, door_open, battery_pct)
               SELECT i.id, r.sensor_id, r.ts, r.temp_c, r.humidity_pct, r.door_open,
                      r.battery_pct
               FROM incidents i
               JOIN sensors s ON s.site_id = i.site_id
               JOIN sensor_readings r ON r.sensor_id = s.id
                    AND r.ts BETWEEN i.occurred_at - %(win)s AND i.occurred_at + %(win)s
               WHERE i.trace_kept_at IS NULL AND i.occurred_at + %(win)s <= %(now)s
               ON CONFLICT DO NOTHING""",
            {"win": BUNDLE_WINDOW, "now": now},
        ).rowcount
        kept = conn.execute(
            """UPDATE incidents SET trace_kept_at = %(now)s
               WHERE trace_kept_at IS NULL AND occurred_at + %(win)s + %(grace)s <= %(now)s""",
            {"win": BUNDLE_WINDOW, "grace": LATE_GRACE, "now": now},
        ).rowcount
    if copied or kept:
        logger.info("incident traces: %d reading(s) kept, %d incident(s) final", copied, kept)
    return max(copied, 0)
