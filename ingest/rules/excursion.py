"""The pure cold-chain state machine: one sensor's excursion and battery state, reading by reading.

Evaluated on reading timestamps (event time), never the wall clock, so a restart, a
redelivery or a burst of buffered readings gives the same alarms as live readings.
No I/O here: the engine loads the state, calls :func:`step` and stores the result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bkcommon.profiles import RuleParams
from ingest.types import NewReading

BATTERY_CLEAR_MARGIN_PCT = 5.0
"""A low-battery alarm clears only above ``low_battery_pct`` plus this margin."""

STATE_VERSION = 1


class Phase(StrEnum):
    """Where the temperature rule of a sensor stands."""

    NORMAL = "normal"
    PENDING = "pending"  # beyond a limit, delay not yet elapsed
    ALARM = "alarm"


class Side(StrEnum):
    """Which limit an excursion crossed."""

    HIGH = "high"
    LOW = "low"


class Rule(StrEnum):
    """Alarm rule names written to ``alarms.rule`` and ``findings.rule``."""

    TEMP_HIGH = "temp_high"
    TEMP_LOW = "temp_low"
    SENSOR_OFFLINE = "sensor_offline"
    LOW_BATTERY = "low_battery"


def rule_for(side: Side) -> Rule:
    """Return the alarm rule of an excursion side."""
    return Rule.TEMP_HIGH if side is Side.HIGH else Rule.TEMP_LOW


@dataclass(frozen=True, slots=True)
class ExcursionState:
    """Persisted rule state of one sensor (temperature excursion + battery); JSON round-trips."""

    phase: Phase = Phase.NORMAL
    side: Side | None = None
    pending_since: datetime | None = None  # first counted reading beyond the limit
    held_s: float = 0.0  # seconds beyond the limit outside door windows
    anchor_ts: datetime | None = (
        None  # last counted beyond-limit reading (None after a door window)
    )
    alarm_started_at: datetime | None = None
    peak_c: float | None = None
    last_ts: datetime | None = None
    door_open: bool = False
    door_open_since: datetime | None = None
    door_closed_at: datetime | None = None
    battery_low: bool = False
    battery_since: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (ISO times) for ``rule_state.state``."""
        out: dict[str, Any] = {"v": STATE_VERSION}
        for k, v in asdict(self).items():
            out[k] = v.isoformat() if isinstance(v, datetime) else v
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ExcursionState:
        """Rebuild a state from ``to_json`` output; missing keys take their defaults."""
        if not data:
            return cls()

        def ts(key: str) -> datetime | None:
            raw = data.get(key)
            return datetime.fromisoformat(raw) if raw else None

        side = data.get("side")
        return cls(
            phase=Phase(data.get("phase", Phase.NORMAL)),
            side=Side(side) if side else None,
            pending_since=ts("pending_since"),
            held_s=float(data.get("held_s", 0.0)),
            anchor_ts=ts("anchor_ts"),
            alarm_started_at=ts("alarm_started_at"),
            peak_c=data.get("peak_c"),
            last_ts=ts("last_ts"),
            door_open=bool(data.get("door_open", False)),
            door_open_since=ts("door_open_since"),
            door_closed_at=ts("door_closed_at"),
            battery_low=bool(data.get("battery_low", False)),
            battery_since=ts("battery_since"),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """An alarm to raise or clear, produced by :func:`step`.

    ``started_at`` is when the condition began (it names the alarm); ``at`` is the
    reading time at which the delay elapsed (raise) or the condition ended (clear).
    """

    kind: str  # "raise" or "clear"
    rule: Rule
    started_at: datetime
    at: datetime
    value: float  # temperature (°C) or battery (%) of the deciding reading
    peak_c: float | None = None
    limit: float | None = None
    held_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _beyond(temp_c: float, params: RuleParams) -> Side | None:
    if params.high_c is not None and temp_c > params.high_c:
        return Side.HIGH
    if params.low_c is not None and temp_c < params.low_c:
        return Side.LOW
    return None


def _limit(side: Side, params: RuleParams) -> float | None:
    return params.high_c if side is Side.HIGH else params.low_c


def _cleared(temp_c: float, side: Side, params: RuleParams) -> bool:
    limit = _limit(side, params)
    if limit is None:  # the limit was removed from the params: nothing left to violate
        return True
    if side is Side.HIGH:
        return temp_c <= limit - params.hysteresis_c
    return temp_c >= limit + params.hysteresis_c


def _more_extreme(side: Side, peak: float | None, temp_c: float) -> float:
    if peak is None:
        return temp_c
    return max(peak, temp_c) if side is Side.HIGH else min(peak, temp_c)


def _door(state: ExcursionState, r: NewReading, params: RuleParams) -> tuple[ExcursionState, bool]:
    """Track the door and say whether this reading falls in a door window (open or grace)."""
    if r.door_open:
        since = state.door_open_since if state.door_open else r.ts
        return replace(state, door_open=True, door_open_since=since, door_closed_at=None), True
    if state.door_open:  # closed now (None = not reported counts as closed)
        state = replace(state, door_open=False, door_open_since=None, door_closed_at=r.ts)
    closed = state.door_closed_at
    in_grace = closed is not None and r.ts < closed + timedelta(seconds=params.door_grace_s)
    return state, in_grace


def _temperature(
    state: ExcursionState, r: NewReading, params: RuleParams, in_door: bool
) -> tuple[ExcursionState, list[Transition]]:
    out: list[Transition] = []
    if state.phase is Phase.ALARM and state.side is not None and state.alarm_started_at:
        side = state.side
        if not _cleared(r.temp_c, side, params):
            return replace(state, peak_c=_more_extreme(side, state.peak_c, r.temp_c)), out
        out.append(
            Transition(
                "clear",
                rule_for(side),
                state.alarm_started_at,
                r.ts,
                r.temp_c,
                peak_c=state.peak_c,
                limit=_limit(side, params),
            )
        )
        state = _to_normal(state)
    side_now = _beyond(r.temp_c, params)
    if state.phase is Phase.PENDING and state.side is not None and side_now is not state.side:
        state = _to_normal(state)  # back inside (or over the other limit): the run is broken
    if side_now is None:
        return state, out
    if state.phase is Phase.PENDING and state.side is not None:
        peak = _more_extreme(side_now, state.peak_c, r.temp_c)
        if in_door:  # door transients neither advance nor break the run
            return replace(state, peak_c=peak, anchor_ts=None), out
        held = state.held_s
        if state.anchor_ts is not None:
            held += (r.ts - state.anchor_ts).total_seconds()
        state = replace(state, held_s=held, anchor_ts=r.ts, peak_c=peak)
    elif state.phase is Phase.NORMAL:
        if in_door:
            return state, out
        state = replace(
            state,
            phase=Phase.PENDING,
            side=side_now,
            pending_since=r.ts,
            held_s=0.0,
            anchor_ts=r.ts,
            peak_c=r.temp_c,
        )
    if state.phase is Phase.PENDING and state.pending_since and state.held_s >= params.delay_s:
        out.append(
            Transition(
                "raise",
                rule_for(side_now),
                state.pending_since,
                r.ts,
                r.temp_c,
                peak_c=state.peak_c,
                limit=_limit(side_now, params),
                held_s=state.held_s,
            )
        )
        state = replace(
            state,
            phase=Phase.ALARM,
            alarm_started_at=state.pending_since,
            pending_since=None,
            held_s=0.0,
            anchor_ts=None,
        )
    return state, out


def _to_normal(state: ExcursionState) -> ExcursionState:
    return replace(
        state,
        phase=Phase.NORMAL,
        side=None,
        pending_since=None,
        held_s=0.0,
        anchor_ts=None,
        alarm_started_at=None,
        peak_c=None,
    )


def _battery(
    state: ExcursionState, r: NewReading, params: RuleParams
) -> tuple[ExcursionState, list[Transition]]:
    pct = r.battery_pct
    if pct is None:
        return state, []
    if not state.battery_low and pct < params.low_battery_pct:
        t = Transition("raise", Rule.LOW_BATTERY, r.ts, r.ts, pct, limit=params.low_battery_pct)
        return replace(state, battery_low=True, battery_since=r.ts), [t]
    if state.battery_low and pct > params.low_battery_pct + BATTERY_CLEAR_MARGIN_PCT:
        since = state.battery_since or r.ts
        t = Transition("clear", Rule.LOW_BATTERY, since, r.ts, pct, limit=params.low_battery_pct)
        return replace(state, battery_low=False, battery_since=None), [t]
    return state, []


def step(
    state: ExcursionState, reading: NewReading, params: RuleParams
) -> tuple[ExcursionState, list[Transition]]:
    """Advance one sensor's rule state by one reading; return the new state and alarm transitions.

    A reading beyond a limit (``temp_c > high_c`` or ``< low_c``) starts a pending
    excursion; it raises once the readings have stayed beyond the limit for
    ``delay_s`` (a reading back inside resets it, so a short spike never alarms).
    Readings while the door is open or within ``door_grace_s`` after it closed
    neither start nor advance a pending excursion, but never clear an alarm. An
    alarm clears when the temperature is back inside the limit by ``hysteresis_c``.
    Readings not newer than ``state.last_ts`` are ignored. A battery below
    ``low_battery_pct`` raises ``low_battery`` once; it clears above the threshold + 5.

    Args:
        state: The sensor's state after its previous reading (``ExcursionState()`` at first).
        reading: The next reading of that sensor.
        params: The sensor's effective rule parameters.

    Returns:
        The new state and the transitions (``raise`` / ``clear``) this reading caused.

    Example:
        >>> from datetime import UTC, datetime, timedelta
        >>> p = RuleParams(low_c=0.0, high_c=8.0, delay_s=300)
        >>> t0 = datetime(2025, 1, 1, tzinfo=UTC)
        >>> s, out = ExcursionState(), []
        >>> for i, temp in enumerate([9.0, 9.5, 9.8, 10.0, 9.9, 9.7]):
        ...     r = NewReading("fridge-1", t0 + timedelta(minutes=i), temp, False, None)
        ...     s, tr = step(s, r, p)
        ...     out += tr
        >>> [(t.kind, t.rule.value, t.at.minute, t.peak_c) for t in out]
        [('raise', 'temp_high', 5, 10.0)]
        >>> s, tr = step(s, NewReading("fridge-1", t0 + timedelta(minutes=6), 7.8, False, None), p)
        >>> tr  # 7.8 is inside the hysteresis band (7.5, 8.0]: the alarm holds
        []
        >>> s, tr = step(s, NewReading("fridge-1", t0 + timedelta(minutes=7), 7.4, False, None), p)
        >>> [(t.kind, t.started_at == t0) for t in tr]
        [('clear', True)]
    """
    if state.last_ts is not None and reading.ts <= state.last_ts:
        return state, []
    state, in_door = _door(state, reading, params)
    state, temp_out = _temperature(state, reading, params, in_door)
    state, batt_out = _battery(state, reading, params)
    return replace(state, last_ts=reading.ts), temp_out + batt_out
