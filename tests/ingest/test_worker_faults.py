"""Ingest under faults: a clean stop of the last worker loses nothing its guard acknowledged,
a database outage is not every sensor gone silent, a backlog behind a live reading."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from bkcommon.settings import parse_mqtt_url
from bkcommon.topics import reading_topic, status_topic
from tests.ingest.conftest import RunningWorker, count
from tests.ingest.test_broker_restart import NumberedPublisher
from tests.support.services import wait_until

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _seqs(db_url: str) -> set[int]:
    with psycopg.connect(db_url) as conn:
        return {
            int(r[0])
            for r in conn.execute("SELECT seq FROM sensor_readings WHERE sensor_id = 'fridge-1'")
        }


def test_clean_stop_of_the_last_worker_loses_nothing_the_guard_acknowledged(
    mqtt_url: str,
    registry_db: str,
    topic_prefix: str,
    start_worker: Callable[..., RunningWorker],
) -> None:
    """The last worker of a group stops (SIGTERM): it leaves the group (UNSUBSCRIBE), then
    flushes. While it flushes, its guard, idle, acknowledged every message without writing
    it although no member of the group was subscribed any more: lost."""
    opts = {
        "group": f"g{uuid.uuid4().hex[:8]}",
        "client_id": f"bk-ingest-last-{uuid.uuid4().hex[:6]}",
        "guard": True,
        "guard_check_s": 0.2,
        "marker_interval_s": 0.5,
        "writers": 1,
    }
    w = start_worker(mqtt_url, **opts)
    guard = w.worker.guard
    assert guard is not None
    wait_until(lambda: guard.active and not guard.gap, 15, what="the guard to go idle")
    port = parse_mqtt_url(mqtt_url).port
    topic = reading_topic("site-a", "fridge-1", topic_prefix)
    pub = NumberedPublisher(port, topic, 0)
    blocker = psycopg.connect(registry_db)
    blocker2 = psycopg.connect(registry_db)
    try:
        blocker.execute("LOCK TABLE sensor_readings IN ACCESS EXCLUSIVE MODE")
        pub.publish(1)  # reading 0: its batch waits for the lock
        wait_until(lambda: w.worker.pending() == 1 and w.worker._queue == [], 10)
        time.sleep(0.2)
        # an edge status behind it: the final flush of the stop will wait on edge_boxes
        from tests.ingest.conftest import publisher

        p2 = publisher(mqtt_url)
        status = {"box_id": "box-a", "ts": _iso(T0), "online": True}
        p2.publish(status_topic("site-a", "box-a", topic_prefix), json.dumps(status), qos=1)
        wait_until(lambda: w.worker.pending() == 2, 10)
        w.worker.stop.set()
        blocker2.execute("LOCK TABLE edge_boxes IN ACCESS EXCLUSIVE MODE")
        blocker.rollback()  # reading 0 commits; the stop leaves the group, flushes the status
        wait_until(lambda: not w.worker.connected.is_set() or _leaving(w), 10)
        time.sleep(0.5)  # UNSUBACK received; the final flush waits on edge_boxes
        pub.publish(50)  # readings 1..50: acknowledged by the broker
        wait_until(lambda: len(pub.acked) == 51, 10, what="the broker's PUBACKs")
        time.sleep(0.5)
    finally:
        blocker.rollback()
        blocker2.rollback()
        blocker.close()
        blocker2.close()
    w.thread.join(15)
    assert not w.thread.is_alive()
    # the same worker comes back (same client id, same group, same guard session)
    back = start_worker(mqtt_url, **opts)
    bguard = back.worker.guard
    assert bguard is not None
    wait_until(lambda: bguard.active and not bguard.gap, 15, what="the guard back")
    try:
        wait_until(lambda: pub.acked <= _seqs(registry_db), 10, what="acknowledged readings")
    except AssertionError:
        missing = sorted(pub.acked - _seqs(registry_db))
        raise AssertionError(
            f"{len(missing)} of {len(pub.acked)} acknowledged readings lost: {missing[:5]}..."
        ) from None
    finally:
        pub.close()


def _leaving(w: RunningWorker) -> bool:
    return w.worker.stop.is_set()


def test_a_database_outage_is_not_every_sensor_gone_silent(
    mqtt_url: str,
    registry_db: str,
    topic_prefix: str,
    start_worker: Callable[..., RunningWorker],
) -> None:
    """The database was unreachable (here: locked) for longer than offline_after_s while the
    sensors kept publishing; back-pressure held their readings in the broker. The first
    sweep after the database came back judged them silent although the worker, not the
    sensors, had been deaf: a false sensor_offline alarm for every sensor of the backlog."""
    from bkcommon.timeutil import utcnow

    w = start_worker(mqtt_url, writers=1, batch_max=1, max_pending=1, sweep_interval_s=0.2)
    from tests.ingest.conftest import publisher

    pub = publisher(mqtt_url)
    t = utcnow() - timedelta(seconds=30)

    def send(sensor: str, i: int) -> None:
        body = {"ts": _iso(t + timedelta(seconds=i)), "temp_c": 4.0}
        pub.publish(reading_topic("site-a", sensor, topic_prefix), json.dumps(body), qos=1)

    blocker = psycopg.connect(registry_db)
    try:
        blocker.execute("LOCK TABLE sensor_readings IN ACCESS EXCLUSIVE MODE")
        send("freezer-1", 0)  # its batch waits for the database
        wait_until(lambda: w.worker.pending() == 1, 10)
        for i in range(5):  # fridge-1 keeps reporting; back-pressure keeps it in the broker
            send("fridge-1", i)
        time.sleep(0.5)
        # the outage lasted 700 s (> offline_after_s 600) and the worker had been listening
        # for an hour before it
        with psycopg.connect(registry_db, autocommit=True) as c:
            c.execute(
                "UPDATE sensors SET last_received_at = now() - interval '700 seconds' "
                "WHERE id = 'fridge-1'"
            )
        w.worker._listening_since = utcnow() - timedelta(hours=1)
        assert w.worker._held_since is not None  # back-pressure holds fridge-1's readings
        w.worker._held_since = utcnow() - timedelta(seconds=700)  # as long as the outage
    finally:
        blocker.rollback()
        blocker.close()
    wait_until(
        lambda: (
            count(registry_db, "SELECT count(*) FROM sensor_readings WHERE sensor_id = 'fridge-1'")
            == 5
        ),
        15,
    )
    pub.loop_stop()
    n = count(
        registry_db,
        "SELECT count(*) FROM alarms WHERE sensor_id = 'fridge-1' AND rule = 'sensor_offline'",
    )
    assert n == 0, "sensor_offline raised for a sensor whose readings waited in the broker"


def test_a_backlog_behind_a_live_reading_is_judged(
    mqtt_url: str,
    registry_db: str,
    topic_prefix: str,
    start_worker: Callable[..., RunningWorker],
) -> None:
    from bkcommon.timeutil import utcnow
    from bkcommon.topics import readings_topic
    from tests.ingest.conftest import publisher

    start_worker(mqtt_url)
    pub = publisher(mqtt_url)
    t0 = utcnow().replace(microsecond=0) - timedelta(hours=2)
    live = {"ts": _iso(t0 + timedelta(minutes=60)), "temp_c": 4.0}
    pub.publish(reading_topic("site-a", "fridge-1", topic_prefix), json.dumps(live), qos=1)
    q = "SELECT count(*) FROM sensor_readings WHERE sensor_id = 'fridge-1'"
    wait_until(lambda: count(registry_db, q) == 1, 10)
    # the gateway replays the hour its uplink was down: 20 °C throughout
    batch = {
        "readings": [{"ts": _iso(t0 + timedelta(minutes=i)), "temp_c": 20.0} for i in range(60)]
    }
    pub.publish(readings_topic("site-a", "fridge-1", topic_prefix), json.dumps(batch), qos=1)
    wait_until(lambda: count(registry_db, q) == 61, 10)
    pub.loop_stop()
    n = count(
        registry_db,
        "SELECT count(*) FROM alarms WHERE sensor_id = 'fridge-1' AND rule = 'temp_high'",
    )
    assert n == 1, "an hour at 20 °C in a fridge (high_c 8) raised no temp_high alarm"
    with psycopg.connect(registry_db) as c:
        status, started, cleared, peak = c.execute(
            "SELECT status, started_at, cleared_at, peak_temp_c FROM alarms"
            " WHERE sensor_id = 'fridge-1' AND rule = 'temp_high'"
        ).fetchone()
    assert (status, started, cleared, peak) == ("cleared", t0, t0 + timedelta(minutes=60), 20.0)
    # the same backlog again (a redelivery) writes nothing more
    pub2 = publisher(mqtt_url)
    pub2.publish(readings_topic("site-a", "fridge-1", topic_prefix), json.dumps(batch), qos=1)
    time.sleep(1.0)
    pub2.loop_stop()
    assert count(registry_db, "SELECT count(*) FROM alarms WHERE sensor_id = 'fridge-1'") == 1
