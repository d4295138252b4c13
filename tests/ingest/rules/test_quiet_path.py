"""The engine's quiet-sensor shortcut stores exactly the state the state machine would."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from ingest.directory import SensorDirectory
from ingest.rules.engine import RuleEngine
from ingest.rules.excursion import ExcursionState, step
from ingest.rules.state_store import STATE_RULE
from ingest.types import NewReading

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
SENSORS = ["fridge-1", "fridge-2", "freezer-1"]
SITE = {
    "regions": [{"id": "r1", "name": "Region"}],
    "sites": [
        {
            "id": "site-1",
            "name": "Canteen",
            "region": "r1",
            "sensors": [
                {"id": "fridge-1", "profile": "fridge", "rules": {"delay_s": 120}},
                {"id": "fridge-2", "profile": "fridge", "rules": {"door_grace_s": 30}},
                {"id": "freezer-1", "profile": "freezer", "rules": {"delay_s": 60}},
            ],
        }
    ],
}


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url) as c:
        sync_registry(c, parse_site_file(SITE))
        c.commit()
        yield c


def _reading(rng: random.Random, sensor: str, ts: datetime, quiet: bool) -> NewReading:
    freezer = sensor.startswith("freezer")
    if quiet:
        temp = rng.uniform(-25, -13) if freezer else rng.uniform(0.5, 7.5)
        return NewReading(sensor, ts, temp, rng.choice([None, False]), rng.choice([None, 80.0]))
    temp = rng.uniform(-20, 0) if freezer else rng.uniform(-2, 12)
    return NewReading(
        sensor, ts, temp, rng.random() < 0.2, rng.choice([None, 5.0, 30.0, 80.0, 95.0])
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quiet_shortcut_matches_the_state_machine(conn: psycopg.Connection[Any], seed: int) -> None:
    rng = random.Random(seed)
    directory = SensorDirectory()
    directory.refresh(conn)
    engine = RuleEngine(directory)
    expected = {s: ExcursionState() for s in SENSORS}
    ts = {s: T0 for s in SENSORS}
    for _batch in range(40):
        batch: list[NewReading] = []
        for s in SENSORS:
            quiet = rng.random() < 0.7  # mostly quiet batches, as in a real fleet
            for _ in range(rng.randint(0, 4)):
                # now and then a late reading, older than the newest one
                back = rng.random() < 0.1
                t = ts[s] - timedelta(seconds=30) if back else ts[s] + timedelta(seconds=20)
                ts[s] = max(ts[s], t)
                batch.append(_reading(rng, s, t, quiet))
        rng.shuffle(batch)
        with conn.transaction(), conn.cursor() as cur:
            engine.apply(cur, batch, T0)
        for r in sorted(batch, key=lambda x: x.ts):
            info = directory.get(r.sensor_id)
            assert info is not None
            expected[r.sensor_id], _ = step(expected[r.sensor_id], r, info.params)
        rows = conn.execute(
            "SELECT sensor_id, state FROM rule_state WHERE rule = %s", (STATE_RULE,)
        ).fetchall()
        stored = {str(sid): ExcursionState.from_json(state) for sid, state in rows}
        for s in SENSORS:
            assert stored.get(s, ExcursionState()) == expected[s], s
