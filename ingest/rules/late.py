"""Readings that arrive after a newer one: a gateway replaying its outage buffer behind its
first live reading, a sensor re-sending what was never acknowledged, two workers of a shared
group splitting a backlog.

The live state machine (:func:`ingest.rules.excursion.step`) judges each sensor forward in
time and skips a reading older than the last one it judged, so such readings were stored
but never judged: an hour at 20 °C in a fridge raised nothing. Here the stretch they fall
in is judged again from the stored readings, starting from a quiet state, and every
excursion that both began and ended inside it is written as an alarm of its own (raised and
cleared, with its peak): the officer learns of it late, but learns of it. An excursion still
open at the stretch's end belongs to the live state, which judged the readings from there
on; one that overlaps an alarm the sensor already has is the same event seen live, and is
not written twice. Alarm keys name the condition's start, so a redelivery writes nothing.
Battery is not judged here: a low battery matters now, not for the past.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg

from ingest.rules.alarms import write_transition
from ingest.rules.excursion import ExcursionState, Rule, Transition, step
from ingest.types import NewReading, SensorInfo

logger = logging.getLogger(__name__)

MAX_LATE_READINGS = 20_000
"""Readings judged again per late stretch: two weeks at one a minute; beyond, only the
first are (a warning says so), so a month-long backfill cannot stall a batch."""

_TEMP_RULES = (Rule.TEMP_HIGH, Rule.TEMP_LOW)


def judge_late(cur: psycopg.Cursor[Any], sensor: SensorInfo, start: datetime, end: datetime) -> int:
    """Judge ``sensor``'s stored readings in [start, end] again; write the excursions that
    began and ended in it and overlap no alarm of the sensor. Returns findings written."""
    cur.execute(
        """SELECT ts, temp_c, door_open FROM sensor_readings
           WHERE sensor_id = %s AND ts >= %s AND ts <= %s ORDER BY ts LIMIT %s""",
        (sensor.sensor_id, start, end, MAX_LATE_READINGS + 1),
    )
    rows = cur.fetchall()
    if len(rows) > MAX_LATE_READINGS:
        logger.warning(
            "sensor %s: %d+ late readings from %s; judging the first %d",
            sensor.sensor_id,
            MAX_LATE_READINGS,
            start.isoformat(),
            MAX_LATE_READINGS,
            extra={"site_id": sensor.site_id},
        )
        rows = rows[:MAX_LATE_READINGS]
    state = ExcursionState()
    raised: dict[tuple[Rule, datetime], Transition] = {}
    done: list[tuple[Transition, Transition]] = []
    for ts, temp_c, door_open in rows:
        reading = NewReading(sensor.sensor_id, ts, float(temp_c), bool(door_open), None)
        state, transitions = step(state, reading, sensor.params)
        for t in transitions:
            if t.rule not in _TEMP_RULES:
                continue
            if t.kind == "raise":
                raised[(t.rule, t.started_at)] = t
            elif (first := raised.pop((t.rule, t.started_at), None)) is not None:
                done.append((replace(first, peak_c=t.peak_c), t))
    written = 0
    for up, down in done:
        if _overlaps_an_alarm(cur, sensor.sensor_id, up.rule, up.started_at, down.at):
            continue
        logger.warning(
            "sensor %s: %s from %s to %s found in readings that arrived late",
            sensor.sensor_id,
            up.rule.value,
            up.started_at.isoformat(),
            down.at.isoformat(),
            extra={"site_id": sensor.site_id},
        )
        written += write_transition(cur, sensor, up)
        written += write_transition(cur, sensor, down)
    return written


def _overlaps_an_alarm(
    cur: psycopg.Cursor[Any], sensor_id: str, rule: Rule, started: datetime, ended: datetime
) -> bool:
    cur.execute(
        """SELECT 1 FROM alarms
           WHERE sensor_id = %s AND rule = %s AND started_at <= %s
             AND coalesce(cleared_at, 'infinity') >= %s
           LIMIT 1""",
        (sensor_id, rule.value, ended, started),
    )
    return cur.fetchone() is not None
