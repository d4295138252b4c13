"""The cycle detector with a smart plug, step by step (no database): the plug times the
cycle, late temperature readings still count, a plug takes over a temperature-begun
cycle, and a still-hot cabinet starts no phantom cycle after the plug switched off."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bkcommon.errors import ConfigError
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from ingest.rules.disinfection import (
    PLUG_PAUSE,
    Cabinet,
    Cycle,
    CycleState,
    apply_cycles,
    step,
    step_power,
)
from ingest.rules.disinfection_windows import JUDGE_GRACE
from ingest.types import NewPower, NewReading

T0 = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
CAB = Cabinet("c", "s", min_temp_c=100.0, min_hold_s=600, start_temp_c=60.0, has_plug=True)


def _t(minute: float, temp: float) -> NewReading:
    return NewReading("c", T0 + timedelta(minutes=minute), temp, None, None)


def _p(minute: float, watts: float | None, amps: float | None = None) -> NewPower:
    return NewPower("c", T0 + timedelta(minutes=minute), watts, amps)


def _feed(events: list[NewReading | NewPower], state: CycleState | None = None) -> list[Cycle]:
    state = state or CycleState()
    out = []
    for ev in events:
        if isinstance(ev, NewPower):
            state, cycle = step_power(state, ev, CAB)
        else:
            state, cycle = step(state, ev, CAB)
        if cycle is not None:
            out.append(cycle)
    # state survives a JSON round trip (a worker restart reads it back)
    assert CycleState.from_json(state.to_json()) == state
    return out


def test_late_temperature_readings_update_a_plug_timed_cycle() -> None:
    power = [_p(m, 1500.0) for m in range(14)] + [_p(14, 2.0)]
    temps = [_t(0, 40.0), _t(2, 90.0)] + [_t(m, 102.0) for m in range(3, 14)] + [_t(15, 70.0)]
    cycles = _feed([*power, *temps])  # the probe's gateway sends its batch after the plug's
    # judged at the plug's end by its on-time alone (no temperature had come yet) ...
    assert (cycles[0].verdict, cycles[0].judged_by, cycles[0].peak_c) == ("valid", "power", None)
    last = cycles[-1]  # the same cycle (same start), updated by the late readings
    assert {c.started_at for c in cycles} == {T0}
    assert (last.verdict, last.judged_by, last.peak_c, last.held_s) == (
        "valid",
        "power_temperature",
        102.0,
        600.0,
    )
    assert (last.on_s, last.peak_w, last.ended_at) == (840.0, 1500.0, T0 + timedelta(minutes=14))


def test_current_only_plug_and_no_probe() -> None:
    [short] = _feed([_p(0, None, 6.0), _p(5, None, 6.1), _p(6, None, 0.05)])
    assert (short.verdict, short.judged_by, short.peak_c, short.on_s) == (
        "too_short",
        "power",
        None,
        360.0,
    )
    [valid] = _feed([_p(0, None, 6.0), _p(11, None, 0.05)])
    assert (valid.verdict, valid.held_s) == ("valid", 660.0)


def test_plug_takes_over_and_no_phantom_cycle_while_still_hot() -> None:
    events: list[NewReading | NewPower] = [_t(0, 70.0), _p(1, 1800.0)]  # plug reported late
    events += [_t(m, 101.0) for m in range(2, 13)]
    events += [_p(13, 3.0), _t(13, 98.0), _t(14, 90.0), _t(20, 75.0), _t(30, 45.0)]
    events += [_t(40, 80.0), _t(41, 40.0)]  # the plug silent: the temperature times it
    first, *rest = _feed(events)
    assert (first.started_at, first.ended_at, first.judged_by, first.verdict) == (
        T0,
        T0 + timedelta(minutes=13),
        "power_temperature",
        "valid",
    )
    assert first.on_s == 720.0
    # still hot after the plug switched off (90, 75 °C): no cycle until it cooled below 60
    # °C; the later 80 °C rise is a cycle of its own, timed by the temperature
    assert [(c.started_at, c.judged_by, c.verdict) for c in rest if c.started_at != T0] == [
        (T0 + timedelta(minutes=40), "temperature", "too_cool")
    ]


def test_a_plug_that_dies_mid_cycle_does_not_hold_it_open() -> None:
    events: list[NewReading | NewPower] = [_p(0, 1800.0)]
    events += [_t(m, 102.0) for m in range(1, 13)]
    events += [_t(13, 80.0), _t(20, 55.0)]  # last plug sample at 0; 20 min later it is cool
    [cycle] = _feed(events)
    assert (cycle.ended_at, cycle.verdict, cycle.judged_by) == (
        T0 + timedelta(minutes=20),
        "valid",
        "power_temperature",
    )
    # a plug still reporting keeps the cycle open through a dip below start_temp_c
    events = [_p(m, 1800.0) for m in range(0, 14)] + [_t(5, 102.0), _t(6, 55.0), _t(7, 102.0)]
    assert _feed(sorted(events, key=lambda e: e.ts)) == []


def test_a_thermostats_pause_is_part_of_the_hold_not_two_short_cycles() -> None:
    """A steam cabinet hot from minute 2; its thermostat cuts the heater (5 W) from 6 to 9
    while the chamber stays at 102 °C, the heater runs again to 15, then the cabinet is off
    and cools. One valid cycle (13 min hot), not a 4-min and a 6-min too-short pair."""
    power = [_p(m, 1500.0) for m in range(6)] + [_p(6, 5.0), _p(7, 5.0), _p(8, 5.0)]
    power += [_p(m, 1500.0) for m in range(9, 15)] + [_p(15, 5.0)]
    temps = [_t(0, 40.0), _t(1, 80.0)] + [_t(m, 102.0) for m in range(2, 16)]
    temps += [_t(17, 90.0), _t(25, 50.0)]
    cycles = _feed(sorted([*power, *temps], key=lambda e: (e.ts, isinstance(e, NewReading))))
    assert {c.started_at for c in cycles} == {T0}  # one cycle: its row written, then updated
    first, last = cycles[0], cycles[-1]
    assert (first.ended_at, first.verdict) == (T0 + timedelta(minutes=6), "too_short")
    assert (last.ended_at, last.verdict, last.judged_by) == (
        T0 + timedelta(minutes=15),
        "valid",
        "power_temperature",
    )
    assert (last.held_s, last.on_s) == (780.0, 900.0)  # hot 2-15; on 0-15, the pause counted
    assert last.valid_at == T0 + timedelta(minutes=12)


def test_a_pause_longer_than_plug_pause_or_a_cool_down_ends_the_cycle() -> None:
    # off at 6, on again at 12 (6 min later, beyond PLUG_PAUSE): two cycles
    events: list[NewReading | NewPower] = [_p(0, 1500.0), _p(6, 5.0), _p(12, 1500.0)]
    events += [_p(30, 5.0)]
    cycles = _feed(events)
    assert [(c.started_at, c.verdict) for c in cycles] == [
        (T0, "too_short"),
        (T0 + timedelta(minutes=12), "valid"),
    ]
    # off at 6, the chamber below start_temp_c at 7: over, even if the plug draws at 8
    events = [_p(0, 1500.0), _t(1, 101.0), _p(6, 5.0), _t(7, 50.0), _p(8, 1500.0), _p(20, 5.0)]
    starts = [c.started_at for c in _feed(events)]
    assert starts == [T0, T0 + timedelta(minutes=8)]


def _final(cycles: list[Cycle]) -> dict[datetime, tuple[Any, ...]]:
    """Each cycle's last ledger row (a row is updated in place, keyed by its start)."""
    return {c.started_at: (c.ended_at, c.held_s, c.verdict, c.on_s, c.valid_at) for c in cycles}


def _in_time_order(events: list[NewReading | NewPower]) -> list[NewReading | NewPower]:
    return sorted(events, key=lambda e: (e.ts, isinstance(e, NewReading)))


_HOT = 102.0
ARRIVALS: dict[str, list[NewReading | NewPower]] = {
    # the plug's switch-off comes after the probe's batch, which ran on past it
    "late switch-off": [_p(m, 1500.0) for m in range(6)]
    + [_t(m, _HOT) for m in range(15)]
    + [_p(m, 5.0) for m in range(6, 20)]
    + [_t(20, 40.0)],
    # the probe's batch reaches 6 min past the switch-off before the plug's resume arrives
    "late resume": [_p(m, 1500.0) for m in range(6)]
    + [_p(6, 5.0)]
    + [_t(m, _HOT) for m in range(2, 13)]
    + [_p(m, 1500.0) for m in range(8, 16)]
    + [_p(16, 5.0)]
    + [_t(m, _HOT) for m in range(13, 17)]
    + [_t(25, 40.0)],
    # a plug reporting "off" every minute, all sent before the probe's late batch
    "plug reports on": [_p(m, 1500.0) for m in range(6)]
    + [_p(m, 5.0) for m in range(6, 20)]
    + [_t(m, _HOT) for m in range(1, 12)]
    + [_t(25, 40.0)],
    # heat read during the pause, then a one-minute resume: not this cycle's past its end
    "short resume": [_p(m, 1500.0) for m in range(6)]
    + [_p(6, 5.0)]
    + [_t(m, _HOT) for m in range(11)]
    + [_p(7, 1500.0), _p(8, 5.0), _t(20, 40.0)],
}


@pytest.mark.parametrize("name", sorted(ARRIVALS))
def test_the_ledger_ends_the_same_whichever_stream_arrives_first(name: str) -> None:
    """Plug and probe report through different gateways; each stream is in order, the two
    are not. The rows left in the ledger are those of the streams in time order, and no row
    holds longer than it lasted or became valid after it ended."""
    as_arrived = _final(_feed(ARRIVALS[name]))
    assert as_arrived == _final(_feed(_in_time_order(ARRIVALS[name])))
    for start, (end, held, _verdict, _on_s, valid_at) in as_arrived.items():
        assert held <= (end - start).total_seconds()
        assert valid_at is None or valid_at <= end


def test_a_cycle_the_temperature_began_resumes_with_its_on_time() -> None:
    events: list[NewReading | NewPower] = [_t(0, 80.0), _t(1, _HOT), _p(1.5, 5.0)]
    events += [_p(3, 1500.0)] + [_t(m, _HOT) for m in range(2, 20)] + [_p(20, 5.0)]
    last = _feed(_in_time_order(events))[-1]
    assert (last.started_at, last.ended_at, last.verdict) == (
        T0,
        T0 + timedelta(minutes=20),
        "valid",
    )
    assert last.on_s == 17 * 60.0  # from the first sample drawing power


def test_windows_are_judged_no_sooner_than_a_pause_is_decided() -> None:
    assert JUDGE_GRACE >= PLUG_PAUSE  # see JUDGE_GRACE's docstring


def test_a_plug_without_probe_resumes_within_the_pause() -> None:
    cycles = _feed([_p(0, 1500.0), _p(4, 5.0), _p(6, 1500.0), _p(12, 5.0)])
    assert [(c.started_at, c.verdict, c.on_s) for c in cycles] == [
        (T0, "too_short", 240.0),
        (T0, "valid", 720.0),  # the same cycle: on 0-12 with a 2-min pause
    ]


@pytest.mark.parametrize(
    ("sensors", "message"),
    [
        (
            [
                {"id": "f", "profile": "fridge", "zigbee_name": "p1"},
                {"id": "c", "profile": "disinfection", "cabinet": {"plug": {"zigbee_name": "p1"}}},
            ],
            "sites.0.sensors.1.cabinet.plug.zigbee_name: duplicate 'p1'",
        ),
        (
            [{"id": "c", "profile": "disinfection", "cabinet": {"on_w": 1}}],
            "sites.0.sensors.0.cabinet.on_w: Input should be greater than or equal to 5",
        ),
        (
            [{"id": "c", "profile": "disinfection", "cabinet": {"on_a": 300}}],
            "sites.0.sensors.0.cabinet.on_a: Input should be less than or equal to 250",
        ),
    ],
)
def test_site_file_errors_name_the_plug_field(sensors: list[dict[str, Any]], message: str) -> None:
    data = {
        "regions": [{"id": "d", "name": "D"}],
        "sites": [{"id": "s1", "name": "S", "region": "d", "sensors": sensors}],
    }
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_site_file(data)


def test_on_thresholds_per_type_region_and_cabinet() -> None:
    data = {
        "regions": [{"id": "d", "name": "D", "disinfection": {"dishwasher": {"on_w": 800}}}],
        "sites": [
            {
                "id": "s1",
                "name": "S",
                "region": "d",
                "sensors": [
                    {"id": "a", "profile": "disinfection"},
                    {"id": "b", "profile": "disinfection", "cabinet": {"type": "dishwasher"}},
                    {
                        "id": "c",
                        "profile": "disinfection",
                        "cabinet": {"type": "infrared", "on_a": 0.5},
                    },
                ],
            }
        ],
    }
    sf = parse_site_file(data)
    site = sf.sites[0]
    specs = {sn.id: sf.cabinet_spec(site, sn)[1] for sn in site.sensors}
    assert (specs["a"].on_w, specs["a"].on_current_a) == (300.0, 1.364)  # steam default
    assert (specs["b"].on_w, specs["b"].on_current_a) == (800.0, 3.636)  # the region's
    assert (specs["c"].on_w, specs["c"].on_current_a) == (200.0, 0.5)  # the cabinet's


def test_the_ledger_row_of_a_resumed_cycle_is_updated_once_and_replays_change_nothing(
    db_url: str,
) -> None:
    """On PostgreSQL: the row written at the thermostat's switch-off is the same row when the
    cycle really ends (its end, hold, on-time and verdict updated); a replay of the whole
    stream writes nothing."""
    data = {
        "regions": [{"id": "d", "name": "D"}],
        "sites": [
            {
                "id": "s1",
                "name": "S",
                "region": "d",
                "sensors": [
                    {"id": "c", "profile": "disinfection", "cabinet": {"type": "steam", "plug": {}}}
                ],
            }
        ],
    }
    power = [_p(m, 1500.0) for m in range(6)] + [_p(6, 5.0)]
    power += [_p(m, 1500.0) for m in range(8, 15)] + [_p(15, 5.0)]
    temps = [_t(1, 80.0)] + [_t(m, 102.0) for m in range(2, 16)] + [_t(25, 50.0)]

    def apply(p: list[NewPower], t: list[NewReading]) -> int:
        with psycopg.connect(db_url) as conn, conn.transaction(), conn.cursor() as cur:
            return apply_cycles(cur, {"c": t} if t else {}, T0, {"c": p} if p else {})

    with psycopg.connect(db_url) as conn:
        sync_registry(conn, parse_site_file(data))
    assert apply(power[:7], temps[:5]) == 1  # to the switch-off at 6: a short cycle so far
    rows = "SELECT started_at, ended_at, verdict, held_s, on_s FROM disinfection_cycles"
    with psycopg.connect(db_url) as conn:
        assert conn.execute(rows).fetchall() == [
            (T0, T0 + timedelta(minutes=6), "too_short", 180.0, 360.0)
        ]
        apply(power[7:], temps[5:])  # back on at 8, off at 15, cool by 25
        assert conn.execute(rows).fetchall() == [
            (T0, T0 + timedelta(minutes=15), "valid", 780.0, 900.0)
        ]
    with psycopg.connect(db_url) as conn:
        conn.execute("DELETE FROM rule_state")
    assert apply(power, temps) == 0  # a replay from scratch: the same row, nothing new
    with psycopg.connect(db_url) as conn:
        assert conn.execute(rows).fetchall() == [
            (T0, T0 + timedelta(minutes=15), "valid", 780.0, 900.0)
        ]


def _kitchen(rng: random.Random) -> tuple[list[NewPower], list[NewReading]]:
    """A plug switching a heater at 1-min steps (uses of 1-4 heating spells with thermostat
    pauses of 1-8 min), and a probe following the heater with a lag, each reading on its
    own clock; a sample of either dropped now and then."""
    on: list[bool] = [False] * rng.randint(1, 6)
    for _ in range(rng.randint(1, 3)):
        for _spell in range(rng.randint(1, 4)):
            on += [True] * rng.randint(1, 14) + [False] * rng.randint(1, 8)
        on += [False] * rng.randint(3, 30)
    on += [False] * 40
    lag, up, down = rng.choice([0, 1, 2, 3]), rng.uniform(8, 30), rng.uniform(0.5, 20)
    temp = [rng.uniform(20, 35)]
    for k in range(1, len(on)):
        heating = on[k - lag] if k >= lag else False
        temp.append(max(20.0, min(rng.uniform(100, 108), temp[-1] + (up if heating else -down))))
    offset = rng.uniform(0.01, 0.99)
    power = [
        _p(k, rng.uniform(1400, 1600) if on[k] else rng.uniform(1, 8))
        for k in range(len(on))
        if rng.random() > 0.05
    ]
    temps = [_t(k + offset, temp[k]) for k in range(len(on)) if rng.random() > 0.1]
    return power, temps


def _gateways(
    rng: random.Random, power: list[NewPower], temps: list[NewReading]
) -> list[NewReading | NewPower]:
    """Both streams as they arrive: each in batches of 1-10 released up to 15 min late, each
    in its own order, the two interleaved by release time."""
    released: list[tuple[datetime, int, int, NewReading | NewPower]] = []
    for src, stream in enumerate((power, temps)):
        k, last = 0, T0
        while k < len(stream):
            batch = stream[k : k + rng.randint(1, 10)]
            last = max(last, batch[-1].ts + timedelta(minutes=rng.uniform(0, 15)))
            released += [(last, src, k + j, e) for j, e in enumerate(batch)]
            k += len(batch)
    released.sort(key=lambda x: (x[0], x[1], x[2]))
    return [e for *_, e in released]


def _run(events: list[NewReading | NewPower], restarts: frozenset[int]) -> list[Cycle]:
    state, out = CycleState(), []
    for i, ev in enumerate(events):
        if isinstance(ev, NewPower):
            if state.last_power_ts is not None and ev.ts <= state.last_power_ts:
                continue
            state, cycle = step_power(state, ev, CAB)
        else:
            if state.last_ts is not None and ev.ts <= state.last_ts:
                continue
            state, cycle = step(state, ev, CAB)
        if cycle is not None:
            out.append(cycle)
        if i in restarts:  # a worker restarted here: the state as stored
            state = CycleState.from_json(json.loads(json.dumps(state.to_json())))
    return out


def test_ledger_rows_stay_coherent_whatever_the_gateways_delay() -> None:
    """300 seeded kitchens, each delivered out of order across the two gateways: every row
    a cycle leaves ends after it starts, holds no longer than it lasts, is valid exactly when
    it held long enough and then says when; a restart anywhere changes nothing."""
    rng = random.Random(20261207)
    for _ in range(300):
        events = _gateways(rng, *_kitchen(rng))
        cycles = _run(events, frozenset())
        assert cycles == _run(events, frozenset(i for i in range(len(events)) if i % 7 == 3))
        for c in _final(cycles).items():
            start, (end, held, verdict, _on_s, valid_at) = c
            assert start <= end, c
            assert held <= (end - start).total_seconds(), c
            assert (verdict == "valid") == (held >= CAB.min_hold_s), c
            assert (valid_at is not None) == (verdict == "valid"), c
            assert valid_at is None or start <= valid_at <= end, c
