"""Table-driven tests of the pure excursion state machine (``step``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bkcommon.profiles import PROFILE_DEFAULTS, Profile, RuleParams, params_for
from ingest.rules.excursion import ExcursionState, Phase, step
from ingest.types import NewReading

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
FRIDGE = PROFILE_DEFAULTS[Profile.FRIDGE]  # 0..8 °C, delay 300 s, hysteresis 0.5, grace 120 s
FREEZER = PROFILE_DEFAULTS[Profile.FREEZER]  # <= -12 °C, delay 900 s
HOT = PROFILE_DEFAULTS[Profile.HOT_HOLDING]  # >= 60 °C, hysteresis 1.0
PREP = PROFILE_DEFAULTS[Profile.PREP_ROOM]  # <= 25 °C, no door grace

# A script row: (minute, temp_c, door_open, battery_pct). Expected: (kind, rule, at, started).
Row = tuple[float, float, bool | None, float | None]


def r(minute: float, temp: float, door: bool | None = False, batt: float | None = None) -> Row:
    return (minute, temp, door, batt)


def run(
    params: RuleParams, script: list[Row], roundtrip: bool = False
) -> tuple[ExcursionState, list[tuple[str, str, float, float]]]:
    state, out = ExcursionState(), []
    for minute, temp, door, batt in script:
        reading = NewReading("s1", T0 + timedelta(minutes=minute), temp, door, batt)
        state, transitions = step(state, reading, params)
        if roundtrip:
            state = ExcursionState.from_json(state.to_json())
        out += [
            (
                t.kind,
                t.rule.value,
                (t.at - T0).total_seconds() / 60,
                (t.started_at - T0).total_seconds() / 60,
            )
            for t in transitions
        ]
    return state, out


CASES = [
    pytest.param(
        FRIDGE,
        [r(m, 9.0) for m in range(10)],
        [("raise", "temp_high", 5, 0)],
        id="held-excursion-raises-once-when-delay-elapses",
    ),
    pytest.param(
        FRIDGE,
        [r(0, 5), r(1, 12.0), r(2, 5.0), r(3, 5.0), r(9, 5.0)],
        [],
        id="single-spike-no-alarm",
    ),
    pytest.param(
        FRIDGE,
        [r(0, 9), r(1, 9), r(2, 9), r(3, 7.9), r(4, 9), r(5, 9), r(6, 9), r(7, 9)],
        [],
        id="reading-back-inside-resets-pending",
    ),
    pytest.param(FRIDGE, [r(m, 8.0) for m in range(10)], [], id="exactly-at-limit-is-inside"),
    pytest.param(
        FRIDGE,
        [r(m, 11.0, door=True) for m in range(10)] + [r(10, 6.0)],
        [],
        id="door-open-readings-never-start-pending",
    ),
    pytest.param(
        FRIDGE,
        [r(0, 10, True), r(1, 10, True), r(2, 10), r(3, 10), r(4, 9), r(5, 6)],
        [],
        id="door-opening-and-grace-no-alarm",
    ),
    pytest.param(
        FRIDGE,
        [r(0, 10, True), r(1, 10, True)] + [r(m, 10) for m in range(2, 12)],
        [("raise", "temp_high", 9, 4)],
        id="grace-period-ends-then-delay-counts",
    ),
    pytest.param(
        FRIDGE,
        [r(0, 9), r(1, 9), r(2, 9), r(3, 9, True), r(4, 9), r(5, 9)]
        + [r(m, 9) for m in range(6, 11)],
        [("raise", "temp_high", 9, 0)],
        id="door-during-pending-freezes-without-reset",
    ),
    pytest.param(
        FRIDGE,
        [r(m, 9) for m in range(6)] + [r(6, 9.5, True), r(7, 9.5, True), r(8, 9.0)],
        [("raise", "temp_high", 5, 0)],
        id="door-does-not-clear-raised-alarm",
    ),
    pytest.param(
        FRIDGE,
        [r(m, 9) for m in range(6)] + [r(6, 7.8), r(7, 7.6), r(8, 8.0), r(9, 7.51)],
        [("raise", "temp_high", 5, 0)],
        id="hysteresis-band-keeps-alarm",
    ),
    pytest.param(
        FRIDGE,
        [r(m, 9) for m in range(6)] + [r(6, 7.8), r(7, 7.5), r(8, 7.0)],
        [("raise", "temp_high", 5, 0), ("clear", "temp_high", 7, 0)],
        id="clears-at-hysteresis-edge",
    ),
    pytest.param(
        FRIDGE,
        [r(m, 9) for m in range(6)] + [r(6, 7.0)] + [r(m, 9) for m in range(7, 13)],
        [("raise", "temp_high", 5, 0), ("clear", "temp_high", 6, 0), ("raise", "temp_high", 12, 7)],
        id="new-excursion-after-clear-is-a-new-alarm",
    ),
    pytest.param(
        FRIDGE,
        [r(m, -1.0) for m in range(7)] + [r(7, 0.4), r(8, 0.5)],
        [("raise", "temp_low", 5, 0), ("clear", "temp_low", 8, 0)],
        id="fridge-low-side",
    ),
    pytest.param(
        FRIDGE,
        [r(0, 9), r(1, 9), r(2, -1), r(3, -1), r(4, -1), r(5, -1), r(6, -1), r(7, -1)],
        [("raise", "temp_low", 7, 2)],
        id="crossing-to-other-side-restarts-pending",
    ),
    pytest.param(
        FREEZER,
        [r(m, -10.0) for m in range(0, 20)],
        [("raise", "temp_high", 15, 0)],
        id="freezer-uses-its-900s-delay",
    ),
    pytest.param(FREEZER, [r(m, -18.0) for m in range(0, 20)], [], id="freezer-cold-is-fine"),
    pytest.param(
        HOT,
        [r(m, 55.0) for m in range(6)] + [r(6, 60.5), r(7, 61.0)],
        [("raise", "temp_low", 5, 0), ("clear", "temp_low", 7, 0)],
        id="hot-holding-low-side-with-1c-hysteresis",
    ),
    pytest.param(
        PREP,
        [r(0, 27, True), r(1, 27)] + [r(m, 27) for m in range(2, 7)],
        [("raise", "temp_high", 6, 1)],
        id="prep-room-without-door-grace",
    ),
    pytest.param(
        params_for(Profile.FRIDGE, {"delay_s": 60}),
        [r(0, 9), r(1, 9), r(2, 9)],
        [("raise", "temp_high", 1, 0)],
        id="per-sensor-delay-override",
    ),
    pytest.param(
        params_for(Profile.FRIDGE, {"high_c": 5.0, "hysteresis_c": 1.0}),
        [r(m, 6) for m in range(6)] + [r(6, 4.5), r(7, 4.0)],
        [("raise", "temp_high", 5, 0), ("clear", "temp_high", 7, 0)],
        id="per-sensor-limit-and-hysteresis-override",
    ),
    pytest.param(
        params_for(Profile.FRIDGE, {"delay_s": 0}),
        [r(0, 9), r(1, 9)],
        [("raise", "temp_high", 0, 0)],
        id="zero-delay-raises-on-first-reading",
    ),
    pytest.param(
        FRIDGE,
        [r(0, 9), r(1, 9), r(2, 9), r(1.5, 3.0), r(2, 3.0)] + [r(m, 9) for m in (3, 4, 5)],
        [("raise", "temp_high", 5, 0)],
        id="older-and-equal-timestamps-are-ignored",
    ),
    pytest.param(
        FRIDGE,
        [
            r(0, 5, None, 20),
            r(1, 5, None, 14),
            r(2, 5, None, 12),
            r(3, 5, None, 19.5),
            r(4, 5, None, None),
            r(5, 5, None, 21),
        ],
        [("raise", "low_battery", 1, 1), ("clear", "low_battery", 5, 1)],
        id="low-battery-raises-once-clears-above-threshold-plus-5",
    ),
]


@pytest.mark.parametrize(("params", "script", "expected"), CASES)
def test_step(
    params: RuleParams, script: list[Row], expected: list[tuple[str, str, float, float]]
) -> None:
    _, got = run(params, script)
    assert got == expected


@pytest.mark.parametrize(("params", "script", "expected"), CASES)
def test_state_survives_json_roundtrip_after_every_reading(
    params: RuleParams, script: list[Row], expected: list[tuple[str, str, float, float]]
) -> None:
    _, got = run(params, script, roundtrip=True)
    assert got == expected


def test_raise_carries_peak_limit_and_held_time() -> None:
    state = ExcursionState()
    temps = [9.0, 11.5, 10.0, 9.0, 9.2, 9.1]
    out = []
    for m, temp in enumerate(temps):
        state, tr = step(
            state, NewReading("s1", T0 + timedelta(minutes=m), temp, False, None), FRIDGE
        )
        out += tr
    (t,) = out
    assert (t.peak_c, t.limit, t.held_s, t.value) == (11.5, 8.0, 300.0, 9.1)
    assert state.phase is Phase.ALARM
    state, tr = step(state, NewReading("s1", T0 + timedelta(minutes=6), 12.5, True, None), FRIDGE)
    assert tr == []
    assert state.peak_c == 12.5


def test_empty_or_partial_json_gives_initial_state() -> None:
    assert ExcursionState.from_json({}) == ExcursionState()
    assert ExcursionState.from_json(None) == ExcursionState()
    assert ExcursionState.from_json({"phase": "pending", "side": "low"}).side is not None


def test_docstring_examples_hold() -> None:
    import doctest

    from ingest.rules import excursion

    result = doctest.testmod(excursion)
    assert result.attempted >= 5
    assert result.failed == 0
