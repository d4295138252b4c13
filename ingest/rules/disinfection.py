"""Disinfection cycle detection (餐具消毒) from a cabinet's temperature stream.

A cycle starts when the temperature rises to the cabinet's ``start_temp_c`` and ends at
the first reading below it. Its hold is the longest continuous run of readings at or
above ``min_temp_c`` (first to last such reading); it is ``valid`` when the hold reaches
``min_hold_s``, ``too_cool`` when the peak never reached ``min_temp_c``, else
``too_short``. Each ended cycle is one ``disinfection_cycles`` row (the 消毒记录 ledger).

The state of a cycle in progress lives in ``rule_state`` (rule ``disinfection``) and is
written in the writer's transaction with the readings, so a worker restarted mid-cycle
carries on where the committed readings left off, and a cycle row is keyed by
(sensor, start): a replay never counts it twice. Readings not newer than the state's
``last_ts`` are ignored (a late reading cannot reopen a cycle that has ended).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import psycopg

from ingest.rules.state_store import lock_rule_rows, write_rule_rows
from ingest.types import NewReading

logger = logging.getLogger(__name__)

STATE_RULE = "disinfection"
"""``rule_state.rule`` of the per-cabinet cycle state."""

Verdict = Literal["valid", "too_cool", "too_short"]


@dataclass(frozen=True, slots=True)
class Cabinet:
    """A cabinet's site and effective valid cycle (``disinfection_cabinets``)."""

    sensor_id: str
    site_id: str
    min_temp_c: float
    min_hold_s: int
    start_temp_c: float


@dataclass(frozen=True, slots=True)
class CycleState:
    """A cabinet between readings: idle, or running since ``started_at``."""

    running: bool = False
    last_ts: datetime | None = None
    started_at: datetime | None = None
    peak_c: float | None = None
    hot_since: datetime | None = None
    last_hot: datetime | None = None
    held_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in ``rule_state.state``."""

        def iso(v: datetime | None) -> str | None:
            return None if v is None else v.isoformat()

        return {
            "running": self.running,
            "last_ts": iso(self.last_ts),
            "started_at": iso(self.started_at),
            "peak_c": self.peak_c,
            "hot_since": iso(self.hot_since),
            "last_hot": iso(self.last_hot),
            "held_s": self.held_s,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CycleState:
        """Decode :meth:`to_json` (an empty dict is the idle state)."""

        def ts(key: str) -> datetime | None:
            v = raw.get(key)
            return None if v is None else datetime.fromisoformat(str(v))

        peak = raw.get("peak_c")
        return cls(
            running=bool(raw.get("running", False)),
            last_ts=ts("last_ts"),
            started_at=ts("started_at"),
            peak_c=None if peak is None else float(peak),
            hot_since=ts("hot_since"),
            last_hot=ts("last_hot"),
            held_s=float(raw.get("held_s", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class Cycle:
    """An ended cycle, as written to the ledger."""

    sensor_id: str
    site_id: str
    started_at: datetime
    ended_at: datetime
    peak_c: float
    held_s: float
    verdict: Verdict
    min_temp_c: float
    min_hold_s: int


def verdict_for(peak_c: float, held_s: float, cab: Cabinet) -> Verdict:
    """Judge a cycle by its peak and its longest hold at ``min_temp_c``."""
    if held_s >= cab.min_hold_s:
        return "valid"
    if peak_c < cab.min_temp_c:
        return "too_cool"
    return "too_short"


def step(state: CycleState, r: NewReading, cab: Cabinet) -> tuple[CycleState, Cycle | None]:
    """Advance the state by one reading (newer than ``state.last_ts``); return any ended cycle."""
    t, ts = r.temp_c, r.ts
    if not state.running:
        if t < cab.start_temp_c:
            return replace(state, last_ts=ts), None
        hot = ts if t >= cab.min_temp_c else None
        return CycleState(True, ts, ts, t, hot, hot, 0.0), None
    assert state.started_at is not None
    assert state.peak_c is not None
    if t < cab.start_temp_c:
        cycle = Cycle(
            cab.sensor_id,
            cab.site_id,
            state.started_at,
            ts,
            state.peak_c,
            state.held_s,
            verdict_for(state.peak_c, state.held_s, cab),
            cab.min_temp_c,
            cab.min_hold_s,
        )
        return CycleState(last_ts=ts), cycle
    peak = max(state.peak_c, t)
    if t >= cab.min_temp_c:
        since = state.hot_since or ts
        held = max(state.held_s, (ts - since).total_seconds())
        return replace(
            state, last_ts=ts, peak_c=peak, hot_since=since, last_hot=ts, held_s=held
        ), None
    return replace(state, last_ts=ts, peak_c=peak, hot_since=None), None


def load_cabinets(cur: psycopg.Cursor[Any], sensor_ids: Sequence[str]) -> dict[str, Cabinet]:
    """The registered cabinets among ``sensor_ids``."""
    cur.execute(
        """SELECT sensor_id, site_id, min_temp_c, min_hold_s, start_temp_c
           FROM disinfection_cabinets WHERE sensor_id = ANY(%s)""",
        (list(sensor_ids),),
    )
    return {
        str(r[0]): Cabinet(str(r[0]), str(r[1]), float(r[2]), int(r[3]), float(r[4]))
        for r in cur.fetchall()
    }


def _decode(sensor_id: str, raw: Any) -> CycleState:
    try:
        return CycleState.from_json(raw)
    except (ValueError, TypeError, KeyError):
        logger.exception("cycle state of cabinet %s is unreadable; starting idle", sensor_id)
        return CycleState()


def _load_states(cur: psycopg.Cursor[Any], ids: list[str]) -> dict[str, CycleState]:
    """Lock (creating if missing) and return the cycle states, in sensor order."""
    return {s: _decode(s, raw) for s, raw in lock_rule_rows(cur, STATE_RULE, ids).items()}


def _write_cycles(cur: psycopg.Cursor[Any], cycles: list[Cycle]) -> int:
    n = 0
    for c in cycles:
        cur.execute(
            """INSERT INTO disinfection_cycles (sensor_id, site_id, started_at, ended_at, peak_c,
                                                held_s, verdict, min_temp_c, min_hold_s)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (sensor_id, started_at) DO NOTHING""",
            (
                c.sensor_id,
                c.site_id,
                c.started_at,
                c.ended_at,
                c.peak_c,
                c.held_s,
                c.verdict,
                c.min_temp_c,
                c.min_hold_s,
            ),
        )
        if cur.rowcount > 0:
            n += 1
            logger.info(
                "disinfection cycle on %s: %s, peak %.1f °C, held %.0f s",
                c.sensor_id,
                c.verdict,
                c.peak_c,
                c.held_s,
                extra={"site_id": c.site_id},
            )
    return n


def apply_cycles(
    cur: psycopg.Cursor[Any],
    by_sensor: dict[str, list[NewReading]],
    now: datetime,
) -> int:
    """Run cycle detection over new readings of disinfection sensors, in the caller's transaction.

    ``by_sensor`` holds only disinfection-profile sensors. A batch of readings all below
    ``start_temp_c`` on an idle cabinet writes nothing. Returns the cycles written.
    """
    if not by_sensor:
        return 0
    cabinets = load_cabinets(cur, list(by_sensor))
    if not cabinets:
        return 0
    ids = sorted(cabinets)
    hot = [s for s in ids if any(r.temp_c >= cabinets[s].start_temp_c for r in by_sensor[s])]
    cur.execute(
        "SELECT sensor_id FROM rule_state WHERE rule = %s AND sensor_id = ANY(%s) "
        "AND (state->>'running')::boolean",
        (STATE_RULE, ids),
    )
    running = {str(r[0]) for r in cur.fetchall()}
    todo = sorted(set(hot) | (running & set(ids)))
    if not todo:
        return 0
    states = _load_states(cur, todo)
    changed: dict[str, CycleState] = {}
    cycles: list[Cycle] = []
    for sid in todo:
        cab, state = cabinets[sid], states[sid]
        before = state
        for r in sorted(by_sensor[sid], key=lambda x: x.ts):
            if state.last_ts is not None and r.ts <= state.last_ts:
                continue
            state, ended = step(state, r, cab)
            if ended is not None:
                cycles.append(ended)
        if state != before:
            changed[sid] = state
    write_rule_rows(cur, STATE_RULE, {k: s.to_json() for k, s in changed.items()}, now)
    return _write_cycles(cur, cycles)
