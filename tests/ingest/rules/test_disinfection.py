"""Disinfection cycles from the stream (persisted state) and meal windows judged by time alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bkcommon.errors import ConfigError
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from ingest.directory import SensorDirectory
from ingest.rules.disinfection import Cabinet, CycleState, step
from ingest.rules.disinfection_windows import JUDGE_GRACE, sweep_disinfection
from ingest.rules.engine import RuleEngine
from ingest.types import NewReading

# 2026-03-02 is a Monday; lunch 11:30–12:30 Beijing time = 03:30–04:30 UTC, window to 05:30,
# judged from 05:35 (JUDGE_GRACE).
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
LUNCH_START = MONDAY.replace(hour=3, minute=30)
LUNCH_END = MONDAY.replace(hour=4, minute=30)
WINDOW_END = MONDAY.replace(hour=5, minute=30)

SITE: dict[str, Any] = {
    "regions": [{"id": "d1", "name": "District"}],
    "sites": [
        {
            "id": "site-d",
            "name": "Canteen D",
            "region": "d1",
            "sensors": [
                {"id": "cab-1", "name": "消毒柜 1", "profile": "disinfection"},
                {
                    "id": "dw-1",
                    "name": "洗碗机",
                    "profile": "disinfection",
                    "cabinet": {"type": "dishwasher"},
                },
                {"id": "fridge-d", "profile": "fridge"},
            ],
            "meals": {
                "services": [
                    {"meal": "lunch", "start": "11:30", "end": "12:30", "weekdays": [1, 2, 3, 4, 5]}
                ],
                "days_off": [{"from": "2026-03-03", "to": "2026-03-03", "reason": "holiday"}],
            },
        }
    ],
}

STEAM = Cabinet("c", "s", min_temp_c=100.0, min_hold_s=600, start_temp_c=60.0)


def _r(sensor: str, ts: datetime, temp: float) -> NewReading:
    return NewReading(sensor, ts, temp, None, None)


def _run(state: CycleState, temps: list[float], every_s: int = 60) -> list[Any]:
    out = []
    for i, t in enumerate(temps):
        state, cycle = step(state, _r("c", MONDAY + timedelta(seconds=i * every_s), t), STEAM)
        if cycle is not None:
            out.append(cycle)
    return out


def test_step_judges_valid_cool_and_short_cycles() -> None:
    [valid] = _run(CycleState(), [25, 80, 100, *[102] * 10, 70, 40])
    assert (valid.verdict, valid.held_s, valid.peak_c) == ("valid", 600.0, 102)  # exactly 10 min
    assert valid.ended_at - valid.started_at == timedelta(minutes=13)
    [cool] = _run(CycleState(), [25, 80, *[95] * 20, 40])
    assert (cool.verdict, cool.held_s) == ("too_cool", 0.0)
    # 5 min hot, a dip to 90 °C resets the hold, 5 more minutes: never 10 min continuous
    [short] = _run(CycleState(), [25, *[101] * 6, 90, *[101] * 6, 40])
    assert (short.verdict, short.held_s) == ("too_short", 300.0)


@pytest.fixture
def db(db_url: str) -> str:
    with psycopg.connect(db_url) as conn:
        sync_registry(conn, parse_site_file(SITE))
        conn.execute("UPDATE disinfection_cabinets SET created_at = %s", (MONDAY,))
    return db_url


def _apply(db: str, readings: list[NewReading]) -> None:
    directory = SensorDirectory()
    with psycopg.connect(db) as conn:
        directory.refresh(conn)
        engine = RuleEngine(directory)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "INSERT INTO sensor_readings (sensor_id, ts, temp_c) "
                "SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::float8[]) "
                "ON CONFLICT DO NOTHING",
                (
                    [r.sensor_id for r in readings],
                    [r.ts for r in readings],
                    [r.temp_c for r in readings],
                ),
            )
            engine.apply(cur, readings, datetime.now(UTC))


def _cycle(sensor: str, start: datetime, temps: list[float], every_s: int = 60) -> list[NewReading]:
    return [_r(sensor, start + timedelta(seconds=i * every_s), t) for i, t in enumerate(temps)]


def _rows(db: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db) as conn:
        return conn.execute(sql, params or None).fetchall()


def test_registry_resolves_cabinet_types_and_schedule(db: str) -> None:
    assert _rows(
        db,
        "SELECT sensor_id, cabinet_type, min_temp_c, min_hold_s FROM disinfection_cabinets "
        "ORDER BY sensor_id",
    ) == [("cab-1", "steam", 100.0, 600), ("dw-1", "dishwasher", 85.0, 40)]
    [(tz, window_s, services)] = _rows(
        db, "SELECT timezone, window_s, services FROM meal_schedules"
    )
    assert (tz, window_s) == ("Asia/Shanghai", 3600)
    assert services == [
        {"meal": "lunch", "start": "11:30", "end": "12:30", "weekdays": [1, 2, 3, 4, 5]}
    ]


def test_cycle_split_across_a_restart_is_counted_once(db: str) -> None:
    readings = _cycle("cab-1", LUNCH_END, [30, 70, *[101] * 12, 50])
    _apply(db, readings[:6])  # the worker stops mid-cycle; its state is committed
    assert _rows(db, "SELECT count(*) FROM disinfection_cycles") == [(0,)]
    _apply(db, readings[4:])  # after a restart, with an overlapping redelivery
    _apply(db, readings)  # a full replay changes nothing
    assert _rows(
        db, "SELECT sensor_id, started_at, verdict, held_s, peak_c FROM disinfection_cycles"
    ) == [("cab-1", LUNCH_END + timedelta(minutes=1), "valid", 660.0, 101.0)]


def test_missed_window_fires_from_time_alone_and_once(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        assert sweep_disinfection(conn, WINDOW_END + JUDGE_GRACE - timedelta(seconds=1)) == 0
        assert sweep_disinfection(conn, WINDOW_END + JUDGE_GRACE) == 2  # both, no reading at all
        assert sweep_disinfection(conn, WINDOW_END + timedelta(minutes=9)) == 0
        # Tuesday is a day off: nothing judged; Wednesday's lunch is.
        assert sweep_disinfection(conn, WINDOW_END + timedelta(days=1, hours=2)) == 0
        assert sweep_disinfection(conn, WINDOW_END + timedelta(days=2) + JUDGE_GRACE) == 2
    rows = _rows(
        db,
        "SELECT subject, rule, kind, tier, occurred_at, payload->>'reason' FROM findings "
        "WHERE occurred_at = %s ORDER BY subject",
        WINDOW_END,
    )
    assert rows == [
        ("cab-1", "disinfection_missed", "alarm_raised", 2, WINDOW_END, "no cycle"),
        ("dw-1", "disinfection_missed", "alarm_raised", 2, WINDOW_END, "no cycle"),
    ]


def test_failed_and_done_windows_carry_the_curve(db: str) -> None:
    # cab-1: too short (5 min at 101 °C); dw-1: a valid 60 s rinse at 86 °C, every 10 s
    _apply(db, _cycle("cab-1", LUNCH_END, [30, 70, *[101] * 6, 40]))
    _apply(db, _cycle("dw-1", LUNCH_END, [40, 65, *[86] * 7, 50], every_s=10))
    with psycopg.connect(db, autocommit=True) as conn:
        assert sweep_disinfection(conn, WINDOW_END + JUDGE_GRACE) == 1
    assert _rows(db, "SELECT sensor_id, outcome FROM disinfection_checks ORDER BY sensor_id") == [
        ("cab-1", "failed"),
        ("dw-1", "done"),
    ]
    [(rule, payload)] = _rows(db, "SELECT rule, payload FROM findings")
    assert rule == "disinfection_failed"
    assert payload["reason"] == "too_short"
    assert payload["cycle"]["held_s"] == 300.0
    assert payload["min_hold_s"] == 600
    assert [p[1] for p in payload["curve"]] == [30, 70, *[101] * 6, 40]


def test_bad_schedule_names_the_field() -> None:
    bad = {**SITE, "sites": [{**SITE["sites"][0], "meals": {"services": [{"meal": "supper"}]}}]}
    with pytest.raises(Exception, match=r"sites\.0\.meals\.services\.0\.meal"):
        parse_site_file(bad)
    bad = {
        **SITE,
        "sites": [
            {**SITE["sites"][0], "sensors": [{"id": "f", "profile": "fridge", "cabinet": {}}]}
        ],
    }
    with pytest.raises(Exception, match=r"cabinet: only a sensor with profile 'disinfection'"):
        parse_site_file(bad)


def test_region_and_cabinet_overrides_resolve_most_specific_first(db_url: str) -> None:
    data = {
        "regions": [
            {"id": "city", "name": "City", "disinfection": {"infrared": {"min_hold_s": 900}}},
            {
                "id": "d2",
                "name": "District",
                "parent": "city",
                "disinfection": {"infrared": {"min_temp_c": 125}},
            },
        ],
        "sites": [
            {
                "id": "s2",
                "name": "S",
                "region": "d2",
                "sensors": [
                    {"id": "ir", "profile": "disinfection", "cabinet": {"type": "infrared"}},
                    {
                        "id": "ir-own",
                        "profile": "disinfection",
                        "cabinet": {"type": "infrared", "min_hold_s": 1200},
                    },
                ],
            }
        ],
    }
    with psycopg.connect(db_url) as conn:
        sync_registry(conn, parse_site_file(data))
        rows = conn.execute(
            "SELECT sensor_id, min_temp_c, min_hold_s, start_temp_c FROM disinfection_cabinets "
            "ORDER BY sensor_id"
        ).fetchall()
        assert conn.execute("SELECT count(*) FROM meal_schedules").fetchone() == (0,)
    assert rows == [("ir", 125.0, 900, 60.0), ("ir-own", 125.0, 1200, 60.0)]


@pytest.mark.parametrize(
    ("meals", "field"),
    [
        ({"services": []}, r"sites\.0\.meals\.services"),
        (
            {
                "timezone": "Mars/Olympus",
                "services": [{"meal": "lunch", "start": "11:00", "end": "12:00"}],
            },
            r"sites\.0\.meals\.timezone",
        ),
        (
            {"services": [{"meal": "lunch", "start": "12:00", "end": "11:00"}]},
            r"sites\.0\.meals\.services\.0",
        ),
        (
            {"services": [{"meal": "lunch", "start": "11:00", "end": "12:00", "weekdays": [0]}]},
            r"sites\.0\.meals\.services\.0\.weekdays",
        ),
        (
            {
                "services": [{"meal": "lunch", "start": "11:00", "end": "12:00"}],
                "days_off": [{"from": "2026-02-01", "to": "2026-01-01"}],
            },
            r"sites\.0\.meals\.days_off\.0",
        ),
        (
            {"services": [{"meal": "lunch", "start": "11:00", "end": "12:00"}], "window_min": 0},
            r"sites\.0\.meals\.window_min",
        ),
        (
            {
                "services": [
                    {"meal": "lunch", "start": "11:00", "end": "12:00"},
                    {"meal": "lunch", "start": "11:30", "end": "12:30", "weekdays": [5, 6]},
                ]
            },
            r"services\.1: lunch is already served on weekday 5",
        ),
    ],
)
def test_bad_meal_schedule_is_refused_naming_the_field(meals: dict[str, Any], field: str) -> None:
    bad = {**SITE, "sites": [{**SITE["sites"][0], "meals": meals}]}
    with pytest.raises(ConfigError, match=field):
        parse_site_file(bad)


def test_a_meal_may_have_other_hours_on_other_weekdays(db: str) -> None:
    """Saturday's lunch is later: its window closes later, Monday's stays as it was."""
    data = {
        **SITE,
        "sites": [
            {
                **SITE["sites"][0],
                "meals": {
                    "services": [
                        {"meal": "lunch", "start": "11:30", "end": "12:30"},
                        {"meal": "lunch", "start": "12:00", "end": "13:30", "weekdays": [6]},
                    ]
                },
            }
        ],
    }
    with psycopg.connect(db, autocommit=True) as conn:
        sync_registry(conn, parse_site_file(data))
        saturday_end = WINDOW_END + timedelta(days=5, hours=1)  # 13:30 + 60 min, Beijing
        # Friday's lunch only: older windows are past the 2-day LOOKBACK, Saturday's is open
        assert sweep_disinfection(conn, saturday_end + JUDGE_GRACE - timedelta(seconds=1)) == 2
        assert sweep_disinfection(conn, saturday_end + JUDGE_GRACE) == 2
    rows = _rows(db, "SELECT DISTINCT service_date, meal_end FROM disinfection_checks ORDER BY 1")
    assert [(d.isoweekday(), end.hour, end.minute) for d, end in rows] == [(5, 4, 30), (6, 5, 30)]


def test_a_window_is_judged_by_when_the_hold_was_reached_not_by_the_cool_down(db: str) -> None:
    """A closed steam cabinet cools slowly. Held at 102 °C from 12:36 to 12:50 (valid at
    12:46), it fell below 60 °C at 13:32, after the window (13:30): it was judged failed,
    "valid cycle ended after the window", while the same cycle still hot at the sweep was
    done. Both are done now; a cycle valid only after the window is not."""
    start = LUNCH_END + timedelta(minutes=5)  # 12:35 Beijing
    slow = [70, *[102] * 15, *[90] * 41, 50]  # hot 12:36-12:50, cooling until 13:32
    _apply(db, _cycle("cab-1", start, slow))
    late = WINDOW_END - timedelta(minutes=6)  # 13:24: hot from 13:25, valid only at 13:35
    _apply(db, _cycle("dw-1", late, [40, 70, *[86] * 2], every_s=300))
    with psycopg.connect(db, autocommit=True) as conn:
        sweep_disinfection(conn, WINDOW_END + JUDGE_GRACE)
    [(valid_at,)] = _rows(db, "SELECT valid_at FROM disinfection_cycles WHERE sensor_id='cab-1'")
    assert valid_at == start + timedelta(minutes=11)  # hot from 12:36, 600 s later
    outcomes = dict(_rows(db, "SELECT sensor_id, outcome FROM disinfection_checks"))
    assert outcomes["cab-1"] == "done"
    assert outcomes["dw-1"] != "done"  # its hold was reached after the window closed


def test_the_look_back_counts_from_the_windows_close() -> None:
    """A dinner whose window closed 36 h ago is still judged after a long outage: the 2-day
    look-back was applied to the meal's start, so windows running past midnight fell out."""
    from ingest.rules.disinfection_windows import LOOKBACK, windows_closed

    now = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # Wednesday 18:00 Beijing
    found = windows_closed(
        sensor_id="c", site_id="s", tz="Asia/Shanghai", window_s=600 * 60,
        services=[{"meal": "dinner", "start": "17:00", "end": "20:00",
                   "weekdays": [1, 2, 3, 4, 5, 6, 7]}],
        days_off=[], since=now - LOOKBACK, now=now, created_at=MONDAY - timedelta(days=7),
        cabinet_type="steam", min_temp_c=100.0, min_hold_s=600,
    )  # fmt: skip
    closes = sorted(w.window_end for w in found)
    assert datetime(2026, 3, 2, 22, 0, tzinfo=UTC) in closes  # Monday's, closed Tue 06:00
    assert all(now - LOOKBACK <= c <= now for c in closes)


def test_a_meal_schedule_is_in_the_regions_zone_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bkcommon.disinfection import MealSchedule

    monkeypatch.setenv("BK_TIME_ZONE", "Asia/Urumqi")
    meals = {"services": [{"meal": "lunch", "start": "11:30", "end": "12:30"}]}
    assert MealSchedule.model_validate(meals).timezone == "Asia/Urumqi"
    monkeypatch.delenv("BK_TIME_ZONE")
    assert MealSchedule.model_validate(meals).timezone == "Asia/Shanghai"
