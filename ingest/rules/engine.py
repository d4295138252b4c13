"""The rule engine the ingest writer calls: runs the excursion state machine over new readings.

``apply`` runs inside the writer's transaction, so readings, rule state, alarms and
findings commit together: a worker killed mid-batch loses nothing and repeats nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from ingest.directory import SensorDirectory
from ingest.rules.alarms import alarm_key, clear_offline, update_peaks, write_transition
from ingest.rules.excursion import ExcursionState, Phase, rule_for, step
from ingest.rules.offline import sweep_offline
from ingest.rules.state_store import load_states, save_states
from ingest.types import NewReading

logger = logging.getLogger(__name__)


class RuleEngine:
    """Stateless between calls: all rule state lives in ``rule_state``, so any worker may run it."""

    def __init__(self, directory: SensorDirectory) -> None:
        self._directory = directory

    def apply(self, cur: psycopg.Cursor[Any], readings: Sequence[NewReading], now: datetime) -> int:
        """Evaluate just-inserted readings (any order) in the caller's transaction.

        Returns the number of findings rows written; the caller sends NOTIFY when > 0.
        """
        by_sensor: dict[str, list[NewReading]] = defaultdict(list)
        for r in readings:
            by_sensor[r.sensor_id].append(r)
        sensors = {}
        for sid in by_sensor:
            info = self._directory.get(sid)
            if info is None:
                logger.debug("readings of unregistered sensor %s not evaluated", sid)
            else:
                sensors[sid] = info
        if not sensors:
            return 0
        ids = sorted(sensors)
        states = load_states(cur, ids)
        written = 0
        changed: dict[str, ExcursionState] = {}
        peaks: dict[str, float] = {}
        for sid in ids:
            info = sensors[sid]
            before = state = states[sid]
            for r in sorted(by_sensor[sid], key=lambda x: x.ts):
                state, transitions = step(state, r, info.params)
                for t in transitions:
                    written += write_transition(cur, info, t)
            if state != before:
                changed[sid] = state
            if (
                state.phase is Phase.ALARM
                and state.side is not None
                and state.alarm_started_at is not None
                and state.peak_c is not None
                and (state.peak_c, state.alarm_started_at)
                != (before.peak_c, before.alarm_started_at)
            ):
                key = alarm_key(sid, rule_for(state.side), state.alarm_started_at)
                peaks[key] = state.peak_c
        update_peaks(cur, peaks)
        save_states(cur, changed, now)
        written += clear_offline(cur, {sid: max(r.ts for r in by_sensor[sid]) for sid in ids})
        return written

    def sweep(self, conn: psycopg.Connection[Any], now: datetime) -> int:
        """Raise ``sensor_offline`` alarms in its own transaction; NOTIFY bk_findings if any."""
        return sweep_offline(conn, now)
