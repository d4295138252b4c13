"""The worker end to end: a real paho client publishes to Mosquitto, rows land in PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from bkcommon.topics import reading_topic, readings_topic, status_topic
from tests.ingest.conftest import RunningWorker, count, publisher
from tests.support.services import wait_until

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _reading(i: int, temp: float = 4.0) -> bytes:
    ts = (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    return json.dumps({"schema_version": 1, "ts": ts, "seq": i, "temp_c": temp}).encode()


def test_readings_published_reach_the_table(
    start_worker: Callable[..., RunningWorker], registry_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    w = start_worker(mqtt_url)
    pub = publisher(mqtt_url)
    topic = reading_topic("site-a", "fridge-1", topic_prefix)
    started = datetime.now(UTC)
    infos = [pub.publish(topic, _reading(i), qos=1) for i in range(200)]
    infos[-1].wait_for_publish(10)
    # the same readings again (a sensor replaying): no new rows
    infos = [pub.publish(topic, _reading(i), qos=1) for i in range(50)]
    infos[-1].wait_for_publish(10)
    wait_until(lambda: w.worker.stats.received >= 250, 15, what="250 messages")
    wait_until(lambda: w.worker.pending() == 0, 10, what="all committed")
    n_rows = count(registry_db, "SELECT count(*) FROM sensor_readings WHERE sensor_id='fridge-1'")
    assert n_rows == 200
    assert w.worker.stats.duplicates == 50
    with psycopg.connect(registry_db) as conn:
        last = conn.execute(
            "SELECT last_reading_at, last_received_at FROM sensors WHERE id='fridge-1'"
        ).fetchone()
        newest_arrival = conn.execute(
            "SELECT max(received_at) FROM sensor_readings WHERE sensor_id='fridge-1'"
        ).fetchone()
        roll = conn.execute("SELECT sum(n) FROM readings_5m").fetchone()
    assert last is not None
    assert last[0] == T0 + timedelta(seconds=199)
    # Stamped in 2026-03 but received now: the offline rule's clock is the worker's.
    assert newest_arrival is not None
    assert last[1] == newest_arrival[0]
    assert started <= last[1] <= datetime.now(UTC)
    assert roll is not None
    assert roll[0] == 200
    pub.loop_stop()
    w.close()


def test_batches_zigbee_bad_input_and_status(
    start_worker: Callable[..., RunningWorker], registry_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    z2m = f"{topic_prefix}/z2m"
    w = start_worker(mqtt_url, zigbee_base=z2m)
    pub = publisher(mqtt_url)
    batch = {"readings": [json.loads(_reading(i, -20.0)) for i in range(1000)]}
    pub.publish(readings_topic("site-a", "freezer-1", topic_prefix), json.dumps(batch), qos=1)
    pub.publish(f"{z2m}/kitchen_fridge", b'{"temperature":4.2,"humidity":51,"battery":90}', qos=1)
    pub.publish(f"{z2m}/some_lamp", b'{"state":"ON"}', qos=1)  # unmapped device: ignored
    pub.publish(reading_topic("site-a", "fridge-1", topic_prefix), b"not json", qos=1)
    pub.publish(reading_topic("site-a", "ghost", topic_prefix), _reading(1), qos=1)
    pub.publish(reading_topic("site-b", "fridge-1", topic_prefix), _reading(1), qos=1)
    status = {"schema_version": 1, "box_id": "box-a", "ts": T0.isoformat(), "online": True}
    info = pub.publish(status_topic("site-a", "box-a", topic_prefix), json.dumps(status), qos=1)
    info.wait_for_publish(10)
    wait_until(lambda: w.worker.stats.received >= 7, 15, what="7 messages")
    wait_until(lambda: w.worker.pending() == 0, 10, what="all committed")
    db = registry_db
    assert count(db, "SELECT count(*) FROM sensor_readings WHERE sensor_id='freezer-1'") == 1000
    zb = "SELECT count(*) FROM sensor_readings WHERE sensor_id='zb-1' AND temp_c=4.2"
    assert count(db, zb) == 1
    assert count(db, "SELECT count(*) FROM dead_letters") == 3
    assert count(db, "SELECT count(*) FROM dead_letters WHERE raw = 'not json'::bytea") == 1
    assert count(db, "SELECT count(*) FROM dead_letters WHERE reason LIKE 'unknown sensor%'") == 1
    assert count(db, "SELECT count(*) FROM dead_letters WHERE reason LIKE 'site mismatch%'") == 1
    assert count(db, "SELECT count(*) FROM edge_boxes WHERE id='box-a' AND online") == 1
    assert w.worker.stats.ignored == 1
    assert w.worker.stats.dead == {"not_json": 1, "unknown_sensor": 1, "site_mismatch": 1}
    pub.loop_stop()
    w.close()


def test_back_pressure_bounds_pending_while_the_database_is_blocked(
    start_worker: Callable[..., RunningWorker], registry_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    w = start_worker(mqtt_url, max_pending=50, batch_max=20)
    pub = publisher(mqtt_url)
    topic = reading_topic("site-a", "fridge-1", topic_prefix)
    with psycopg.connect(registry_db) as blocker:
        blocker.execute("LOCK TABLE sensor_readings IN EXCLUSIVE MODE")  # the database "stalls"
        infos = [pub.publish(topic, _reading(i), qos=1) for i in range(400)]
        wait_until(lambda: w.worker.stats.received >= 50, 10, what="the queue to fill")
        peak = 0
        for _ in range(20):  # watch it for a while: it stays at the bound
            peak = max(peak, w.worker.pending())
            time.sleep(0.05)
        assert 50 <= w.worker.stats.received <= 51  # one message may wait inside on_message
        assert peak <= 50
        blocker.rollback()  # the database is back
    infos[-1].wait_for_publish(10)
    wait_until(
        lambda: count(registry_db, "SELECT count(*) FROM sensor_readings") == 400,
        20,
        what="all 400 rows after the stall",
    )
    pub.loop_stop()
    w.close()


def test_back_pressure_counts_payload_bytes(
    start_worker: Callable[..., RunningWorker], registry_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    """Violations carry their JPEG inline: 1,500 of them held 800 MB of a worker while the
    database was slow, far below the message bound. 100 KB messages against a 1 MiB bound:
    the worker stops reading after about ten, and stores all of them once the database is back."""
    w = start_worker(mqtt_url, max_pending=10_000, max_pending_bytes=1024 * 1024)
    pub = publisher(mqtt_url)
    topic = reading_topic("site-a", "fridge-1", topic_prefix)
    pad = b" " * 100_000  # JSON whitespace: a valid reading of 100 KB
    with psycopg.connect(registry_db) as blocker:
        blocker.execute("LOCK TABLE sensor_readings IN EXCLUSIVE MODE")
        infos = [pub.publish(topic, _reading(i) + pad, qos=1) for i in range(40)]
        wait_until(lambda: w.worker.stats.received >= 10, 10, what="the byte bound")
        time.sleep(1.0)
        assert w.worker.stats.received <= 12  # 1 MiB / 100 KB, and one inside on_message
        blocker.rollback()
    infos[-1].wait_for_publish(10)
    wait_until(
        lambda: count(registry_db, "SELECT count(*) FROM sensor_readings") == 40,
        20,
        what="all 40 rows after the stall",
    )
    pub.loop_stop()
    w.close()


def test_database_connection_lost_mid_stream_loses_nothing(
    start_worker: Callable[..., RunningWorker], registry_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    w = start_worker(mqtt_url)
    pub = publisher(mqtt_url)
    topic = reading_topic("site-a", "fridge-1", topic_prefix)
    for i in range(100):
        pub.publish(topic, _reading(i), qos=1)
    wait_until(lambda: count(registry_db, "SELECT count(*) FROM sensor_readings") == 100, 10)
    with psycopg.connect(registry_db, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'bk-ingest'"
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 1  # every writer connection that has written (BK_INGEST_WRITERS)
    infos = [pub.publish(topic, _reading(i), qos=1) for i in range(100, 300)]
    infos[-1].wait_for_publish(10)
    wait_until(
        lambda: count(registry_db, "SELECT count(*) FROM sensor_readings") == 300,
        20,
        what="300 rows after the reconnect",
    )
    assert w.worker.stats.db_errors >= 1
    # a lost connection is not a bad message: nothing was dead-lettered
    assert count(registry_db, "SELECT count(*) FROM dead_letters") == 0
    pub.loop_stop()
    w.close()
