"""Smart-plug samples of disinfection cabinets through the validator and the batch writer
on a real PostgreSQL: values at every bound are stored, a redelivery is a no-op, the
cabinet is heard from, and the rule engine sees the new samples only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from ingest.directory import SensorDirectory
from ingest.types import NewPower, NewReading
from ingest.validate import AcceptedPower, Validator
from ingest.writer import BatchWriter, Item

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
SITE = {
    "regions": [{"id": "d", "name": "D"}],
    "sites": [
        {
            "id": "s1",
            "name": "S",
            "region": "d",
            "sensors": [
                {
                    "id": "cab-1",
                    "profile": "disinfection",
                    "cabinet": {"type": "dishwasher", "plug": {"zigbee_name": "plug-1"}},
                }
            ],
        }
    ],
}


class PowerHook:
    """Records the plug samples the writer hands over."""

    def __init__(self) -> None:
        self.power: list[NewPower] = []

    def apply(self, cur: psycopg.Cursor[Any], readings: Sequence[NewReading], now: datetime) -> int:
        return 0

    def apply_power(
        self,
        cur: psycopg.Cursor[Any],
        readings: Sequence[NewReading],
        power: Sequence[NewPower],
        now: datetime,
    ) -> int:
        self.power.extend(power)
        return 0


def test_plug_samples_at_their_bounds_are_stored_once(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        sync_registry(conn, parse_site_file(SITE))
        conn.execute("UPDATE sites SET created_at = %s", (NOW - timedelta(days=1),))
        conn.commit()
        d = SensorDirectory()
        d.refresh(conn)
        conn.commit()
        v = Validator(d, "bk/v1", "zigbee2mqtt")
        topic = "bk/v1/s1/sensor/cab-1/power"
        bodies: list[dict[str, Any]] = [
            {"power_w": 0},
            {"power_w": 50_000, "current_a": 250, "voltage_v": 500, "energy_kwh": 1e9},
            {"current_a": 0.0, "voltage_v": 1e-300, "switch_on": False, "seq": 2**63 - 1},
        ]
        msgs = [
            (topic, json.dumps({"ts": (NOW + timedelta(seconds=i)).isoformat(), **b}).encode())
            for i, b in enumerate(bodies)
        ]
        msgs.append(("zigbee2mqtt/plug-1", b'{"power": 0.5, "state": "off", "energy": 0}'))
        rat = NOW + timedelta(seconds=9)  # the Zigbee2MQTT state is stamped on arrival
        batch = [Item(t, raw, rat, v(t, raw, rat)) for t, raw in msgs]
        assert all(isinstance(it.outcome, AcceptedPower) for it in batch)
        hook = PowerHook()
        writer = BatchWriter(hook)
        res = writer.write(conn, batch)
        assert (res.inserted, res.duplicates, dict(res.dead)) == (4, 0, {})
        again = writer.write(conn, batch)  # a redelivery after a crash
        assert (again.inserted, again.duplicates) == (0, 4)
        assert len(hook.power) == 4  # the rules saw each sample once
        rows = conn.execute(
            "SELECT power_w, current_a, voltage_v, energy_kwh, switch_on, seq "
            "FROM cabinet_power ORDER BY ts"
        ).fetchall()
        heard = conn.execute("SELECT last_received_at FROM sensors WHERE id = 'cab-1'").fetchone()
    assert rows == [
        (0.0, None, None, None, None, None),
        (50_000.0, 250.0, 500.0, 1e9, None, None),
        (None, 0.0, 0.0, None, False, 2**63 - 1),
        (0.5, None, None, 0.0, False, None),
    ]
    assert heard == (NOW + timedelta(seconds=9),)
