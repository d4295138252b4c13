"""The simulator's cabinets (good, short, cool, missed) judged by the real rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from brightkitchen.simulate.cabinets import (
    PLUGS,
    Scenario,
    cabinet_id,
    scenario_power,
    scenario_readings,
    with_cabinets,
)
from ingest.directory import SensorDirectory
from ingest.rules.disinfection_windows import JUDGE_GRACE, sweep_disinfection
from ingest.rules.engine import RuleEngine
from ingest.types import NewPower, NewReading

MEAL_END = datetime(2026, 3, 2, 4, 30, tzinfo=UTC)


def test_simulated_cabinets_are_judged_done_failed_failed_missed(db_url: str) -> None:
    data = with_cabinets(
        {
            "regions": [{"id": "d", "name": "D"}],
            "sites": [{"id": "s1", "name": "S", "region": "d"}],
        },
        MEAL_END,
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        sync_registry(conn, parse_site_file(data))
        conn.execute(
            "UPDATE disinfection_cabinets SET created_at = %s", (MEAL_END - timedelta(days=1),)
        )
        # the demo's cabinets report around the meal only: silent for a day before offline
        offline = conn.execute(
            "SELECT DISTINCT (params->>'offline_after_s')::int FROM sensors "
            "WHERE profile = 'disinfection'"
        ).fetchall()
        assert offline == [(86400,)]
        directory = SensorDirectory()
        directory.refresh(conn)
        engine = RuleEngine(directory)
        for sc in Scenario:
            sid = cabinet_id("s1", sc)
            readings = [
                NewReading(sid, r.ts, r.temp_c, None, None)
                for r in scenario_readings(sc, MEAL_END, interval_s=30)
            ]
            with conn.transaction(), conn.cursor() as cur:
                engine.apply(cur, readings, MEAL_END + timedelta(hours=1))
        assert sweep_disinfection(conn, MEAL_END + timedelta(hours=1)) == 0
        assert sweep_disinfection(conn, MEAL_END + timedelta(hours=1) + JUDGE_GRACE) == 3
        verdicts = dict(
            conn.execute("SELECT sensor_id, verdict FROM disinfection_cycles").fetchall()
        )
        outcomes = dict(
            conn.execute("SELECT sensor_id, outcome FROM disinfection_checks").fetchall()
        )
    assert verdicts == {
        "s1-cab-good": "valid",
        "s1-cab-short": "too_short",
        "s1-cab-cool": "too_cool",
    }
    assert outcomes == {
        "s1-cab-good": "done",
        "s1-cab-short": "failed",
        "s1-cab-cool": "failed",
        "s1-cab-missed": "missed",
    }


def test_simulated_plugs_time_the_cycles_with_the_same_verdicts(db_url: str) -> None:
    data = with_cabinets(
        {
            "regions": [{"id": "d", "name": "D"}],
            "sites": [{"id": "s1", "name": "S", "region": "d"}],
        },
        MEAL_END,
    )
    with psycopg.connect(db_url, autocommit=True) as conn:
        sync_registry(conn, parse_site_file(data))
        directory = SensorDirectory()
        directory.refresh(conn)
        engine = RuleEngine(directory)
        for sc in Scenario:
            sid = cabinet_id("s1", sc)
            readings = [
                NewReading(sid, r.ts, r.temp_c, None, None)
                for r in scenario_readings(sc, MEAL_END, interval_s=30)
            ]
            power = [
                NewPower(sid, p.ts, p.power_w, p.current_a)
                for p in scenario_power(sc, MEAL_END, interval_s=30)
                if sc in PLUGS
            ]
            for i in range(0, len(readings), 7):  # batches, as the writer hands them over
                with conn.transaction(), conn.cursor() as cur:
                    engine.apply_power(cur, readings[i : i + 7], power[i : i + 7], MEAL_END)
        cycles = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT sensor_id, verdict, judged_by, on_s FROM disinfection_cycles"
            ).fetchall()
        }
    assert cycles == {
        "s1-cab-good": ("valid", "power_temperature", 23 * 60.0),  # 8 min heating + 15 held
        "s1-cab-short": ("too_short", "power_temperature", 14 * 60.0),
        "s1-cab-cool": ("too_cool", "temperature", None),
    }
