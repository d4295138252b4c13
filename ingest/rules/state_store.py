"""Load and store rule state rows (``rule_state``) under row locks, in the caller's transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest.rules.alarms import iso_utc_sql
from ingest.rules.excursion import ExcursionState

logger = logging.getLogger(__name__)

STATE_RULE = "cold_chain"
"""``rule_state.rule`` of the per-sensor state machine (temperature excursion + battery)."""

_SELECT = (
    "SELECT sensor_id, state FROM rule_state WHERE rule = %s AND sensor_id = ANY(%s) "
    "ORDER BY sensor_id FOR UPDATE"
)


def lock_rule_rows(
    cur: psycopg.Cursor[Any], rule: str, sensor_ids: Sequence[str]
) -> dict[str, Any]:
    """Lock and return the raw JSON state of ``rule`` for ``sensor_ids``, creating missing rows.

    Row locks (``FOR UPDATE``, in sensor order) make two workers handling the same sensor
    take turns; each sees the state the other committed. Every rule kept in ``rule_state``
    (cold chain, disinfection cycles) loads through here.
    """
    ids = sorted(set(sensor_ids))
    cur.execute(_SELECT, (rule, ids))
    found = {str(sid): raw for sid, raw in cur.fetchall()}
    missing = [i for i in ids if i not in found]
    if missing:
        cur.execute(
            "INSERT INTO rule_state (sensor_id, rule, state) "
            "SELECT unnest(%s::text[]), %s, '{}'::jsonb ON CONFLICT DO NOTHING",
            (missing, rule),
        )
        cur.execute(_SELECT, (rule, missing))
        found.update({str(sid): raw for sid, raw in cur.fetchall()})
    return found


def write_rule_rows(
    cur: psycopg.Cursor[Any], rule: str, states: dict[str, Any], now: datetime
) -> None:
    """Write the JSON states of ``rule`` back in one statement (rows locked by the caller)."""
    if not states:
        return
    cur.execute(
        """UPDATE rule_state AS r SET state = v.value, updated_at = %s
           FROM jsonb_each(%s) AS v WHERE r.rule = %s AND r.sensor_id = v.key""",
        (now, Jsonb(states), rule),
    )


def _decode(sensor_id: str, raw: Any) -> ExcursionState:
    try:
        return ExcursionState.from_json(raw)
    except (ValueError, TypeError, KeyError):
        logger.exception("rule state of sensor %s is unreadable; starting afresh", sensor_id)
        return ExcursionState()


def load_states(cur: psycopg.Cursor[Any], sensor_ids: Sequence[str]) -> dict[str, ExcursionState]:
    """Lock and return the cold-chain states of ``sensor_ids``, creating missing rows first."""
    rows = lock_rule_rows(cur, STATE_RULE, sensor_ids)
    return {sid: _decode(sid, raw) for sid, raw in rows.items()}


def save_states(cur: psycopg.Cursor[Any], states: dict[str, ExcursionState], now: datetime) -> None:
    """Write changed states back in one statement."""
    write_rule_rows(cur, STATE_RULE, {k: s.to_json() for k, s in states.items()}, now)


_LOCK = (
    "SELECT 1 FROM rule_state WHERE rule = %s AND sensor_id = ANY(%s) ORDER BY sensor_id FOR UPDATE"
)

_ADVANCE_QUIET = f"""
WITH v AS (
    SELECT unnest(%(sensors)s::text[]) AS sensor_id, unnest(%(ts)s::timestamptz[]) AS ts
)
UPDATE rule_state AS r SET
    state = r.state || jsonb_build_object(
        'last_ts', {iso_utc_sql("GREATEST((r.state->>'last_ts')::timestamptz, v.ts)")}),
    updated_at = %(now)s
FROM v
WHERE r.rule = %(rule)s AND r.sensor_id = v.sensor_id
  AND COALESCE(r.state->>'phase', 'normal') = 'normal'
  AND NOT COALESCE((r.state->>'door_open')::boolean, false)
  AND NOT COALESCE((r.state->>'battery_low')::boolean, false)
RETURNING r.sensor_id
"""


def advance_quiet(
    cur: psycopg.Cursor[Any], sensor_ids: Sequence[str], latest: dict[str, datetime], now: datetime
) -> set[str]:
    """Lock the states of ``sensor_ids``; advance ``last_ts`` of the quiet ones in ``latest``.

    For a sensor in the normal phase with its door closed and no low-battery alarm,
    readings inside its limits, with the door closed and the battery not low change
    nothing but ``last_ts`` (see :func:`ingest.rules.excursion.step`), so the caller
    passes such sensors' newest reading time in ``latest`` instead of running the state
    machine. Returns the sensors handled; any other sensor (no state row yet, or a state
    that is not quiet) must go through the state machine. All rows are locked first in
    sensor order, as :func:`load_states` does, so two workers never deadlock.
    """
    if not latest:
        return set()
    cur.execute(_LOCK, (STATE_RULE, sorted(set(sensor_ids))))
    ids = sorted(latest)
    cur.execute(
        _ADVANCE_QUIET,
        {"sensors": ids, "ts": [latest[i] for i in ids], "rule": STATE_RULE, "now": now},
    )
    return {str(r[0]) for r in cur.fetchall()}
