"""Load and store rule state rows (``rule_state``) under row locks, in the caller's transaction."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest.rules.excursion import ExcursionState

logger = logging.getLogger(__name__)

STATE_RULE = "cold_chain"
"""``rule_state.rule`` of the per-sensor state machine (temperature excursion + battery)."""

_SELECT = (
    "SELECT sensor_id, state FROM rule_state WHERE rule = %s AND sensor_id = ANY(%s) "
    "ORDER BY sensor_id FOR UPDATE"
)


def _decode(sensor_id: str, raw: Any) -> ExcursionState:
    try:
        return ExcursionState.from_json(raw)
    except (ValueError, TypeError, KeyError):
        logger.exception("rule state of sensor %s is unreadable; starting afresh", sensor_id)
        return ExcursionState()


def load_states(cur: psycopg.Cursor[Any], sensor_ids: Sequence[str]) -> dict[str, ExcursionState]:
    """Lock and return the states of ``sensor_ids`` (sorted), creating missing rows first.

    Row locks (``FOR UPDATE``) make two workers handling the same sensor take turns;
    each sees the state the other committed.
    """
    ids = sorted(set(sensor_ids))
    cur.execute(_SELECT, (STATE_RULE, ids))
    found = {str(sid): _decode(sid, raw) for sid, raw in cur.fetchall()}
    missing = [i for i in ids if i not in found]
    if missing:
        cur.execute(
            "INSERT INTO rule_state (sensor_id, rule, state) "
            "SELECT unnest(%s::text[]), %s, '{}'::jsonb ON CONFLICT DO NOTHING",
            (missing, STATE_RULE),
        )
        cur.execute(_SELECT, (STATE_RULE, missing))
        found.update({str(sid): _decode(sid, raw) for sid, raw in cur.fetchall()})
    return found


def save_states(cur: psycopg.Cursor[Any], states: dict[str, ExcursionState], now: datetime) -> None:
    """Write changed states back in one statement."""
    if not states:
        return
    cur.execute(
        """UPDATE rule_state AS r SET state = v.value, updated_at = %s
           FROM jsonb_each(%s) AS v WHERE r.rule = %s AND r.sensor_id = v.key""",
        (now, Jsonb({k: s.to_json() for k, s in states.items()}), STATE_RULE),
    )
