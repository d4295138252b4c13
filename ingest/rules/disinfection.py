"""Disinfection cycle detection (餐具消毒) from a cabinet's temperature and smart-plug streams.

Temperature alone: a cycle starts when the temperature rises to the cabinet's
``start_temp_c`` and ends at the first reading below it. Its hold is the longest
continuous run of readings at or above ``min_temp_c`` (first to last such reading); it is
``valid`` when the hold reaches ``min_hold_s``, ``too_cool`` when the peak never reached
``min_temp_c``, else ``too_short``. Each ended cycle is one ``disinfection_cycles`` row
(the 消毒记录 ledger).

With a smart plug (``cabinet.plug``), the plug times the cycle: it starts at the first
sample drawing at least ``on_w`` (or ``on_a`` from a plug reporting only current) and ends
at the first sample below it, so a cabinet switched on that never got hot is a
``too_cool`` cycle (``disinfection_failed``), not no cycle at all (``missed``). The
temperature readings inside the run give the peak and the hold as above
(``judged_by = power_temperature``); a cabinet whose probe sent nothing in the run is
judged by the run's length alone (``judged_by = power``: ``valid`` when the plug drew
power for ``min_hold_s``, else ``too_short``). A power sample takes over a cycle the
temperature began (a plug that reported late); a plug that says nothing leaves the
temperature in charge. After a plug-timed cycle ends while the cabinet is still hot, the
temperature may start a cycle again only once it has been below ``start_temp_c``. A plug
that draws power again within ``PLUG_PAUSE`` of switching off (a thermostat cutting the
heater once the chamber is hot) continues the same cycle: the ledger row written at the
switch-off is updated when the cycle really ends, and temperature readings during the pause
keep its hold going (a reading below ``start_temp_c`` ends the pause for good). The plug's
samples decide the pause whenever they arrive, and a cycle's hold is counted up to its end
(``_hold_until``), so the ledger ends the same whichever gateway's batch comes first.

The state of a cycle in progress lives in ``rule_state`` (rule ``disinfection``) and is
written in the writer's transaction with the readings, so a worker restarted mid-cycle
carries on where the committed readings left off, and a cycle row is keyed by
(sensor, start): a replay never counts it twice. Temperature readings not newer than the
state's ``last_ts``, and plug samples not newer than ``last_power_ts``, are ignored (a
late reading cannot reopen a cycle that has ended). Temperature readings of a plug-timed
cycle that arrive after the plug's end (a probe's gateway batching) still count: the
ended cycle stays in the state (``closing``) until the temperature passes its end, and
its ledger row is updated.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

from ingest.rules.state_store import lock_rule_rows, write_rule_rows
from ingest.types import NewPower, NewReading

logger = logging.getLogger(__name__)

STATE_RULE = "disinfection"
"""``rule_state.rule`` of the per-cabinet cycle state."""

PLUG_PAUSE = timedelta(minutes=5)
"""A plug-timed cycle whose plug draws power again within this long of switching off is
the same cycle going on: a cabinet's thermostat cuts the heater once the chamber is hot
(a few watts for a few minutes) and switches it back on, and that pause is part of the
hold, not the end of one short cycle and the start of another."""

MAX_RUNS = 16
"""Ended hold runs kept per cycle (a cycle has a few; a thermostat's pauses add one each)."""

PLUG_SILENT = timedelta(minutes=10)
"""A plug-timed cycle whose plug has sent nothing for this long ends by the temperature
(below ``start_temp_c``), so a plug that died mid-cycle does not hold it open."""

Verdict = Literal["valid", "too_cool", "too_short"]
JudgedBy = Literal["temperature", "power", "power_temperature"]


@dataclass(frozen=True, slots=True)
class Cabinet:
    """A cabinet's site, effective valid cycle and plug (``disinfection_cabinets``)."""

    sensor_id: str
    site_id: str
    min_temp_c: float
    min_hold_s: int
    start_temp_c: float
    has_plug: bool = False
    on_w: float = 300.0
    on_a: float = 1.364

    def switched_on(self, p: NewPower) -> bool:
        """True when a plug sample draws at least the on threshold (power, else current)."""
        if p.power_w is not None:
            return p.power_w >= self.on_w
        return p.current_a is not None and p.current_a >= self.on_a


def _iso(v: datetime | None) -> str | None:
    return None if v is None else v.isoformat()


@dataclass(frozen=True, slots=True)
class CycleState:
    """A cabinet between readings: idle, running since ``started_at``, or ``closing`` (a
    plug-timed cycle ended at ``ended_at`` whose late temperature readings may still come).

    ``driver`` is what times the running cycle: ``temperature`` or ``power``; ``on_since``
    the first plug sample of it drawing power. ``armed`` is False after a plug-timed cycle
    ended while the cabinet was still hot, until a temperature below ``start_temp_c``.
    """

    running: bool = False
    last_ts: datetime | None = None
    started_at: datetime | None = None
    peak_c: float | None = None
    hot_since: datetime | None = None
    last_hot: datetime | None = None
    held_s: float = 0.0
    driver: str = "temperature"
    last_power_ts: datetime | None = None
    on_since: datetime | None = None
    peak_w: float | None = None
    closing: bool = False
    ended_at: datetime | None = None
    armed: bool = True
    valid_at: datetime | None = None
    runs: tuple[tuple[datetime, datetime], ...] = ()
    """The cycle's ended hold runs (first to last reading at ``min_temp_c``), the latest
    ``MAX_RUNS``: a probe's batch may bring heat read after a switch-off the plug reports
    later, and the hold up to the cycle's end is counted from these (``_hold_until``)."""
    prior_s: float = 0.0
    """The longest of the cycle's ended runs no longer in ``runs``."""

    def to_json(self) -> dict[str, Any]:
        """The JSON stored in ``rule_state.state``."""
        return {
            "running": self.running,
            "last_ts": _iso(self.last_ts),
            "started_at": _iso(self.started_at),
            "peak_c": self.peak_c,
            "hot_since": _iso(self.hot_since),
            "last_hot": _iso(self.last_hot),
            "held_s": self.held_s,
            "driver": self.driver,
            "last_power_ts": _iso(self.last_power_ts),
            "on_since": _iso(self.on_since),
            "peak_w": self.peak_w,
            "closing": self.closing,
            "ended_at": _iso(self.ended_at),
            "armed": self.armed,
            "valid_at": _iso(self.valid_at),
            "runs": [[a.isoformat(), b.isoformat()] for a, b in self.runs],
            "prior_s": self.prior_s,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CycleState:
        """Decode :meth:`to_json` (an empty dict is the idle state; a state stored before
        plugs existed reads as temperature-timed)."""

        def ts(key: str) -> datetime | None:
            v = raw.get(key)
            return None if v is None else datetime.fromisoformat(str(v))

        def num(key: str) -> float | None:
            v = raw.get(key)
            return None if v is None else float(v)

        return cls(
            running=bool(raw.get("running", False)),
            last_ts=ts("last_ts"),
            started_at=ts("started_at"),
            peak_c=num("peak_c"),
            hot_since=ts("hot_since"),
            last_hot=ts("last_hot"),
            held_s=float(raw.get("held_s", 0.0)),
            driver="power" if raw.get("driver") == "power" else "temperature",
            last_power_ts=ts("last_power_ts"),
            on_since=ts("on_since"),
            peak_w=num("peak_w"),
            closing=bool(raw.get("closing", False)),
            ended_at=ts("ended_at"),
            armed=bool(raw.get("armed", True)),
            valid_at=ts("valid_at"),
            runs=tuple(
                (datetime.fromisoformat(str(a)), datetime.fromisoformat(str(b)))
                for a, b in raw.get("runs", ())
            ),
            # a state stored before runs were kept: its hold so far stands for them
            prior_s=float(raw.get("prior_s", raw.get("held_s", 0.0))),
        )


@dataclass(frozen=True, slots=True)
class Cycle:
    """An ended cycle, as written to the ledger."""

    sensor_id: str
    site_id: str
    started_at: datetime
    ended_at: datetime
    peak_c: float | None
    held_s: float
    verdict: Verdict
    min_temp_c: float
    min_hold_s: int
    judged_by: JudgedBy = "temperature"
    on_s: float | None = None
    peak_w: float | None = None
    valid_at: datetime | None = None
    """When the hold first reached ``min_hold_s`` (None: never): a meal's window is judged
    on this, not on when the cabinet cooled down, which a closed steam cabinet may do long
    after the window."""


def verdict_for(peak_c: float, held_s: float, cab: Cabinet) -> Verdict:
    """Judge a cycle by its peak and its longest hold at ``min_temp_c``."""
    if held_s >= cab.min_hold_s:
        return "valid"
    if peak_c < cab.min_temp_c:
        return "too_cool"
    return "too_short"


def _ended(state: CycleState, end: datetime, cab: Cabinet) -> Cycle:
    """The ledger row of the cycle ``state`` holds, ended at ``end``."""
    assert state.started_at is not None
    on_s = None
    if state.driver == "power" and state.on_since is not None:
        on_s = max(0.0, (end - state.on_since).total_seconds())
    if state.peak_c is None:  # timed by the plug, no temperature in the run
        held = on_s or 0.0
        verdict: Verdict = "valid" if held >= cab.min_hold_s else "too_short"
        reached = (
            state.on_since + timedelta(seconds=cab.min_hold_s)
            if verdict == "valid" and state.on_since is not None
            else None
        )
        return Cycle(
            cab.sensor_id,
            cab.site_id,
            state.started_at,
            end,
            None,
            held,
            verdict,
            cab.min_temp_c,
            cab.min_hold_s,
            "power",
            on_s,
            state.peak_w,
            reached,
        )
    held, reached = _hold_until(state, end, cab)
    return Cycle(
        cab.sensor_id,
        cab.site_id,
        state.started_at,
        end,
        state.peak_c,
        held,
        verdict_for(state.peak_c, held, cab),
        cab.min_temp_c,
        cab.min_hold_s,
        "power_temperature" if state.driver == "power" else "temperature",
        on_s,
        state.peak_w,
        reached,
    )


def _hold_until(state: CycleState, end: datetime, cab: Cabinet) -> tuple[float, datetime | None]:
    """The cycle's hold counted up to ``end``, and when it first reached ``min_hold_s`` (None:
    not by then). A probe's batch may have brought heat read after a switch-off the plug
    reported later: that heat is not this cycle's, so the runs are cut at ``end``."""
    assert state.started_at is not None
    if state.last_hot is None or state.last_hot <= end:  # nothing read hot after the end
        reached = state.valid_at if state.held_s >= cab.min_hold_s else None
        return state.held_s, reached
    runs = list(state.runs)
    if state.hot_since is not None:
        runs.append((state.hot_since, state.last_hot))
    held, reached = state.prior_s, None
    for a, b in runs:  # oldest first
        if a > end:
            break
        length = (min(b, end) - a).total_seconds()
        held = max(held, length)
        if reached is None and length >= cab.min_hold_s:
            reached = a + timedelta(seconds=cab.min_hold_s)
    if held < cab.min_hold_s:
        reached = None
    return max(0.0, min(held, (end - state.started_at).total_seconds())), reached


def _heat(state: CycleState, t: float, ts: datetime, cab: Cabinet) -> CycleState:
    """Fold one temperature reading of the cycle into its peak and hold."""
    peak = t if state.peak_c is None else max(state.peak_c, t)
    held = state.held_s if state.peak_c is not None else 0.0  # the plug's on-time until now
    if t >= cab.min_temp_c:
        since = state.hot_since or ts
        held = max(held, (ts - since).total_seconds())
        valid_at = state.valid_at
        if valid_at is None and (ts - since).total_seconds() >= cab.min_hold_s:
            valid_at = since + timedelta(seconds=cab.min_hold_s)
        return replace(
            state,
            last_ts=ts,
            peak_c=peak,
            hot_since=since,
            last_hot=ts,
            held_s=held,
            valid_at=valid_at,
        )
    if state.hot_since is None or state.last_hot is None:
        return replace(state, last_ts=ts, peak_c=peak, held_s=held)
    runs, prior = (*state.runs, (state.hot_since, state.last_hot)), state.prior_s
    if len(runs) > MAX_RUNS:  # the oldest goes; its length stays in prior_s
        (a, b), runs = runs[0], runs[1:]
        prior = max(prior, (b - a).total_seconds())
    return replace(
        state, last_ts=ts, peak_c=peak, hot_since=None, held_s=held, runs=runs, prior_s=prior
    )


def step(  # noqa: PLR0911 - one return per phase of the cycle
    state: CycleState, r: NewReading, cab: Cabinet
) -> tuple[CycleState, Cycle | None]:
    """Advance the state by one temperature reading (newer than ``state.last_ts``); return a
    cycle that ended, or (``closing``) whose late reading changed it."""
    t, ts = r.temp_c, r.ts
    if state.closing:
        assert state.ended_at is not None
        assert state.started_at is not None
        if ts < state.started_at:
            return replace(state, last_ts=ts), None
        if ts <= state.ended_at:  # a late reading of the plug-timed cycle that ended
            folded = _heat(state, t, ts, cab)
            return folded, _ended(folded, state.ended_at, cab)
        heard = state.last_power_ts
        # the pause is open until the plug reports past it (still off: the cycle is over),
        # or says nothing for PLUG_SILENT; late readings up to the end still count (above)
        pause_open = (
            heard is not None and heard - state.ended_at < PLUG_PAUSE and ts - heard <= PLUG_SILENT
        )
        if t >= cab.start_temp_c and pause_open:
            # the plug may yet switch back on within PLUG_PAUSE (a thermostat's pause), which
            # the plug's own samples decide, whenever they arrive: keep the hold going; the
            # ledger row stays as ended unless the plug does
            return _heat(state, t, ts, cab), None
        state = CycleState(last_ts=state.last_ts, last_power_ts=state.last_power_ts, armed=False)
    if state.running and state.driver == "power" and cab.has_plug:
        assert state.started_at is not None
        if ts < state.started_at:  # before the plug switched on
            return replace(state, last_ts=ts), None
        silent = state.last_power_ts is None or ts - state.last_power_ts > PLUG_SILENT
        if t < cab.start_temp_c and silent:  # the plug went quiet: the temperature ends it
            cycle = _ended(state, ts, cab)
            return CycleState(last_ts=ts, last_power_ts=state.last_power_ts), cycle
        return _heat(state, t, ts, cab), None
    if not state.running:
        if t < cab.start_temp_c:
            return replace(state, last_ts=ts, armed=True), None
        if not state.armed:  # still hot from a plug-timed cycle
            return replace(state, last_ts=ts), None
        hot = ts if t >= cab.min_temp_c else None
        return replace(
            CycleState(True, ts, ts, t, hot, hot, 0.0),
            last_power_ts=state.last_power_ts,
        ), None
    if t < cab.start_temp_c:
        cycle = _ended(state, ts, cab)
        return CycleState(last_ts=ts, last_power_ts=state.last_power_ts), cycle
    return _heat(state, t, ts, cab), None


def step_power(state: CycleState, p: NewPower, cab: Cabinet) -> tuple[CycleState, Cycle | None]:
    """Advance the state by one plug sample (newer than ``state.last_power_ts``); return any
    cycle that ended."""
    ts, on = p.ts, cab.switched_on(p)
    watts = p.power_w
    if state.running:
        if not on and state.started_at is not None and ts < state.started_at:
            # "off" from before the cycle began (a plug that reported late): not its end
            return replace(state, last_power_ts=ts), None
        peak_w = state.peak_w if watts is None else max(state.peak_w or 0.0, watts)
        if state.driver != "power":  # the plug takes over a cycle the temperature began
            state = replace(state, driver="power", on_since=ts if on else None)
        if on:
            held = state.held_s
            if state.peak_c is None and state.on_since is not None:
                held = (ts - state.on_since).total_seconds()
            return replace(state, last_power_ts=ts, peak_w=peak_w, held_s=held), None
        state = replace(state, last_power_ts=ts, peak_w=peak_w)
        cycle = _ended(state, ts, cab)
        return replace(state, running=False, closing=True, ended_at=ts), cycle
    if not on:
        return replace(state, last_power_ts=ts), None
    if state.closing and state.ended_at is not None and ts - state.ended_at < PLUG_PAUSE:
        # switched back on within the pause: the same cycle (same start, same ledger row,
        # updated when it ends), its hold and on-time running through the pause
        peak_w = state.peak_w if watts is None else max(state.peak_w or 0.0, watts)
        held = state.held_s
        if state.peak_c is None and state.on_since is not None:
            held = (ts - state.on_since).total_seconds()
        resumed = replace(
            state,
            running=True,
            closing=False,
            ended_at=None,
            last_power_ts=ts,
            peak_w=peak_w,
            on_since=state.on_since or ts,  # a temperature-begun cycle the plug first saw off
        )
        return replace(resumed, held_s=held), None
    started = CycleState(
        running=True,
        last_ts=state.last_ts,
        started_at=ts,
        driver="power",
        last_power_ts=ts,
        on_since=ts,
        peak_w=watts,
        armed=False,
    )
    return started, None


def load_cabinets(cur: psycopg.Cursor[Any], sensor_ids: Sequence[str]) -> dict[str, Cabinet]:
    """The registered cabinets among ``sensor_ids``."""
    cur.execute(
        """SELECT sensor_id, site_id, min_temp_c, min_hold_s, start_temp_c, has_plug, on_w, on_a
           FROM disinfection_cabinets WHERE sensor_id = ANY(%s)""",
        (list(sensor_ids),),
    )
    return {
        str(r[0]): Cabinet(
            str(r[0]),
            str(r[1]),
            float(r[2]),
            int(r[3]),
            float(r[4]),
            bool(r[5]),
            float(r[6]),
            float(r[7]),
        )
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


_UPSERT_CYCLE = """
INSERT INTO disinfection_cycles AS c (sensor_id, site_id, started_at, ended_at, peak_c, held_s,
                                      verdict, min_temp_c, min_hold_s, judged_by, on_s, peak_w,
                                      valid_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (sensor_id, started_at) DO UPDATE SET
    ended_at = EXCLUDED.ended_at, peak_c = EXCLUDED.peak_c, held_s = EXCLUDED.held_s,
    verdict = EXCLUDED.verdict, judged_by = EXCLUDED.judged_by, on_s = EXCLUDED.on_s,
    peak_w = EXCLUDED.peak_w, valid_at = EXCLUDED.valid_at
WHERE c.judged_by <> 'temperature'
  AND (c.ended_at, c.peak_c, c.held_s, c.verdict, c.judged_by, c.on_s, c.peak_w, c.valid_at)
      IS DISTINCT FROM (EXCLUDED.ended_at, EXCLUDED.peak_c, EXCLUDED.held_s, EXCLUDED.verdict,
                        EXCLUDED.judged_by, EXCLUDED.on_s, EXCLUDED.peak_w, EXCLUDED.valid_at)
RETURNING (xmax = 0) AS inserted
"""
"""A replayed cycle is a no-op; a plug-timed cycle is updated by temperature readings that
arrived after the plug's end, and by the plug switching back on within ``PLUG_PAUSE`` (never
a temperature-timed one: its end is final)."""


def _write_cycles(cur: psycopg.Cursor[Any], cycles: list[Cycle]) -> int:
    n = 0
    for c in cycles:
        cur.execute(
            _UPSERT_CYCLE,
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
                c.judged_by,
                c.on_s,
                c.peak_w,
                c.valid_at,
            ),
        )
        row = cur.fetchone()
        if row is not None and row[0]:
            n += 1
            logger.info(
                "disinfection cycle on %s: %s (%s), peak %s °C, held %.0f s",
                c.sensor_id,
                c.verdict,
                c.judged_by,
                "—" if c.peak_c is None else f"{c.peak_c:.1f}",
                c.held_s,
                extra={"site_id": c.site_id},
            )
    return n


def apply_cycles(
    cur: psycopg.Cursor[Any],
    by_sensor: dict[str, list[NewReading]],
    now: datetime,
    power: dict[str, list[NewPower]] | None = None,
) -> int:
    """Run cycle detection over new readings and plug samples of disinfection cabinets, in
    the caller's transaction.

    ``by_sensor`` holds only disinfection-profile sensors' temperature readings, ``power``
    their plugs' samples. A batch of readings all below ``start_temp_c`` and of samples all
    below the on threshold, on an idle cabinet, writes nothing. Returns the cycles written.
    """
    power = power or {}
    if not by_sensor and not power:
        return 0
    cabinets = load_cabinets(cur, sorted(set(by_sensor) | set(power)))
    if not cabinets:
        return 0
    ids = sorted(cabinets)
    hot = {
        s
        for s in ids
        if any(r.temp_c >= cabinets[s].start_temp_c for r in by_sensor.get(s, ()))
        or any(cabinets[s].has_plug and cabinets[s].switched_on(p) for p in power.get(s, ()))
    }
    cur.execute(
        "SELECT sensor_id FROM rule_state WHERE rule = %s AND sensor_id = ANY(%s) "
        "AND ((state->>'running')::boolean OR coalesce((state->>'closing')::boolean, false) "
        "     OR NOT coalesce((state->>'armed')::boolean, true))",
        (STATE_RULE, ids),
    )
    busy = {str(r[0]) for r in cur.fetchall()}
    todo = sorted(hot | (busy & set(ids)))
    if not todo:
        return 0
    states = _load_states(cur, todo)
    changed: dict[str, CycleState] = {}
    cycles: list[Cycle] = []
    for sid in todo:
        cab, state = cabinets[sid], states[sid]
        before = state
        events: list[tuple[datetime, int, NewReading | NewPower]] = [
            (p.ts, 0, p) for p in power.get(sid, ()) if cab.has_plug
        ]
        events += [(r.ts, 1, r) for r in by_sensor.get(sid, ())]
        events.sort(key=lambda e: (e[0], e[1]))  # at the same time, the plug first
        for ts, _kind, ev in events:
            ended: Cycle | None
            if isinstance(ev, NewPower):
                if state.last_power_ts is not None and ts <= state.last_power_ts:
                    continue
                state, ended = step_power(state, ev, cab)
            else:
                if state.last_ts is not None and ts <= state.last_ts:
                    continue
                state, ended = step(state, ev, cab)
            if ended is not None:
                cycles.append(ended)
        if state != before:
            changed[sid] = state
    write_rule_rows(cur, STATE_RULE, {k: s.to_json() for k, s in changed.items()}, now)
    return _write_cycles(cur, cycles)
