"""Regression of the reported outage: one reading that passed validation but did not fit its
column made the writer raise; the batch was never acknowledged, and every restart got the
same message back and crashed again. Real worker, real Mosquitto, real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from bkcommon.topics import reading_topic
from tests.ingest.conftest import RunningWorker, count, publisher
from tests.support.services import wait_until

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _reading(i: int, **fields: object) -> bytes:
    ts = (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    return json.dumps({"ts": ts, "seq": i, "temp_c": 4.0, **fields}).encode()


def _rows(db: str) -> int:
    return count(db, "SELECT count(*) FROM sensor_readings WHERE sensor_id = 'fridge-1'")


def _dead(db: str) -> list[str]:
    with psycopg.connect(db) as conn:
        return [str(r[0]) for r in conn.execute("SELECT reason FROM dead_letters ORDER BY id")]


def test_a_reading_its_column_cannot_hold_is_dead_lettered_acked_and_ingest_goes_on(
    start_worker: Callable[..., RunningWorker], registry_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    # A column narrower than the contract (as seq beyond bigint was): the contract lets 150 °C
    # through, this database refuses it.
    with psycopg.connect(registry_db) as conn:
        conn.execute(
            "ALTER TABLE sensor_readings ADD CONSTRAINT temp_below_100 CHECK (temp_c < 100)"
        )
    group, client_id = f"g{uuid.uuid4().hex[:8]}", f"bk-ingest-poison-{uuid.uuid4().hex[:6]}"
    w = start_worker(mqtt_url, group=group, client_id=client_id, flush_interval_ms=200)
    pub = publisher(mqtt_url)
    topic = reading_topic("site-a", "fridge-1", topic_prefix)
    msgs = [_reading(i) for i in range(100)]
    msgs[40] = _reading(40, temp_c=150.0)  # passes validation, refused by the column
    msgs[70] = _reading(70, seq=2**63)  # the reported payload: now refused by the contract
    infos = [pub.publish(topic, m, qos=1) for m in msgs]
    infos[-1].wait_for_publish(10)
    wait_until(lambda: _rows(registry_db) == 98 and len(_dead(registry_db)) == 2, 20, what="98+2")
    dead = _dead(registry_db)
    assert any(r.startswith("database rejected: CheckViolation") for r in dead), dead
    assert any("seq" in r and r.startswith("invalid SensorReading") for r in dead), dead
    assert w.worker.stats.dead == {"database": 1, "invalid": 1}
    w.close()  # stops cleanly: nothing raised out of the worker

    # The same session again: had the batch not been acknowledged, it would come back.
    again = start_worker(mqtt_url, group=group, client_id=client_id, flush_interval_ms=50)
    pub.publish(topic, _reading(100), qos=1).wait_for_publish(10)
    wait_until(lambda: _rows(registry_db) == 99, 15, what="the next reading")
    wait_until(lambda: again.worker.pending() == 0, 10, what="all committed")
    assert len(_dead(registry_db)) == 2
    assert again.worker.stats.received == 1
    pub.loop_stop()
    again.close()
