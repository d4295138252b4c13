"""The rule engine the ingest writer calls: runs the excursion state machine over new readings.

``apply`` runs inside the writer's transaction, so readings, rule state, alarms and
findings commit together: a worker killed mid-batch loses nothing and repeats nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg

from bkcommon.profiles import Profile
from ingest.directory import SensorDirectory
from ingest.rules.alarms import alarm_key, clear_offline, update_peaks, write_transition
from ingest.rules.cameras import BOX_OFFLINE_AFTER_S, sweep_cameras
from ingest.rules.disinfection import apply_cycles
from ingest.rules.disinfection_windows import sweep_disinfection
from ingest.rules.excursion import ExcursionState, Phase, rule_for, step
from ingest.rules.late import judge_late
from ingest.rules.offline import sweep_offline
from ingest.rules.state_store import advance_quiet, load_states, save_states
from ingest.types import NewPower, NewReading, SensorInfo

logger = logging.getLogger(__name__)


def _quiet(readings: list[NewReading], info: SensorInfo) -> bool:
    """True when every reading is inside the limits, door closed and battery not low.

    Such readings change a quiet state (see :func:`advance_quiet`) only in ``last_ts``.
    """
    p = info.params
    high = p.high_c
    low = p.low_c
    batt = p.low_battery_pct
    for r in readings:
        t = r.temp_c
        if (high is not None and t > high) or (low is not None and t < low) or r.door_open:
            return False
        if r.battery_pct is not None and r.battery_pct < batt:
            return False
    return True


class RuleEngine:
    """Stateless between calls: all rule state lives in ``rule_state``, so any worker may run it."""

    def __init__(
        self, directory: SensorDirectory, box_offline_after_s: float = BOX_OFFLINE_AFTER_S
    ) -> None:
        self._directory = directory
        self._box_offline_after_s = box_offline_after_s

    def apply(self, cur: psycopg.Cursor[Any], readings: Sequence[NewReading], now: datetime) -> int:
        """Evaluate just-inserted readings (any order) in the caller's transaction.

        Returns the number of findings rows written; the caller sends NOTIFY when > 0.
        """
        return self.apply_power(cur, readings, (), now)

    def apply_power(
        self,
        cur: psycopg.Cursor[Any],
        readings: Sequence[NewReading],
        power: Sequence[NewPower],
        now: datetime,
    ) -> int:
        """:meth:`apply`, with the disinfection cabinets' just-inserted smart-plug samples:
        the cycle detector sees a cabinet's temperature and power together, and a sample
        proves the cabinet is heard from (clears its offline alarm)."""
        written = self._readings(cur, readings, now) if readings else 0
        plugs: dict[str, list[NewPower]] = defaultdict(list)
        for p in power:
            plugs[p.sensor_id].append(p)
        if plugs:
            written += clear_offline(
                cur, {s: max(p.received_at or now for p in ps) for s, ps in plugs.items()}
            )
        temps: dict[str, list[NewReading]] = defaultdict(list)
        for r in readings:
            temps[r.sensor_id].append(r)
        cabinets = {
            s: rs
            for s, rs in temps.items()
            if (i := self._directory.get(s)) is not None and i.profile is Profile.DISINFECTION
        }
        if cabinets or plugs:
            apply_cycles(cur, cabinets, now, dict(plugs))
        return written

    def _readings(
        self, cur: psycopg.Cursor[Any], readings: Sequence[NewReading], now: datetime
    ) -> int:
        """The excursion, battery and offline rules over new readings."""
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
        latest = {sid: max(r.ts for r in by_sensor[sid]) for sid in sensors}
        arrived = {sid: max(r.received_at or now for r in by_sensor[sid]) for sid in sensors}
        quiet = {sid: latest[sid] for sid, info in sensors.items() if _quiet(by_sensor[sid], info)}
        handled = advance_quiet(cur, list(sensors), quiet, now)
        written = self._step_all(
            cur, {s: i for s, i in sensors.items() if s not in handled}, by_sensor, now
        )
        written += clear_offline(cur, arrived)
        return written

    @staticmethod
    def _step_all(
        cur: psycopg.Cursor[Any],
        sensors: dict[str, SensorInfo],
        by_sensor: dict[str, list[NewReading]],
        now: datetime,
    ) -> int:
        """Run the state machine for ``sensors`` (state loaded and stored under row locks)."""
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
            params = info.params
            high, low, batt = params.high_c, params.low_c, params.low_battery_pct
            last = state.last_ts
            late = [r for r in by_sensor[sid] if last is not None and r.ts <= last]
            if last is not None and late and not _quiet(late, info):
                written += judge_late(cur, info, min(r.ts for r in late), last)
            for r in sorted(by_sensor[sid], key=lambda x: x.ts):
                if (
                    state.phase is Phase.NORMAL
                    and not state.door_open
                    and not state.battery_low
                    and not r.door_open
                    and (high is None or r.temp_c <= high)
                    and (low is None or r.temp_c >= low)
                    and (r.battery_pct is None or r.battery_pct >= batt)
                ):
                    # a quiet reading on a quiet state moves only last_ts (as advance_quiet)
                    if last is None or r.ts > last:
                        last = r.ts
                    continue
                if last != state.last_ts:
                    state = replace(state, last_ts=last)
                state, transitions = step(state, r, params)
                last = state.last_ts
                for t in transitions:
                    written += write_transition(cur, info, t)
            if last != state.last_ts:
                state = replace(state, last_ts=last)
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
        return written

    def sweep(
        self, conn: psycopg.Connection[Any], now: datetime, listening_since: datetime | None = None
    ) -> int:
        """Raise ``sensor_offline`` alarms, raise and clear ``camera_offline`` alarms and judge
        closed disinfection windows (each in its own transaction); NOTIFY bk_findings if any."""
        return (
            sweep_offline(conn, now, listening_since)
            + sweep_cameras(conn, now, self._box_offline_after_s, listening_since)
            + sweep_disinfection(conn, now)
        )
