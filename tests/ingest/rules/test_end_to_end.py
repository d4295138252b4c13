"""Readings published over MQTT to a real ingest worker open one alarm, one finding, one NOTIFY."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg

from bkcommon.topics import reading_topic
from tests.ingest.conftest import RunningWorker, count, publisher
from tests.support.services import wait_until


def _payload(ts: datetime, seq: int, temp: float, door: bool = False) -> bytes:
    body = {
        "schema_version": 1,
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "seq": seq,
        "temp_c": temp,
        "door_open": door,
    }
    return json.dumps(body).encode()


def test_worker_raises_one_alarm_for_a_held_excursion(
    start_worker: Callable[..., RunningWorker], registry_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    listener = psycopg.connect(registry_db, autocommit=True)
    listener.execute("LISTEN bk_findings")
    w = start_worker(mqtt_url)
    pub = publisher(mqtt_url)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=12)
    topic = reading_topic("site-a", "fridge-1", topic_prefix)
    # door opening (no alarm), then 9 minutes above 8 °C, then back below the band
    script = [(0, 12.0, True), (1, 5.0, False)] + [(m, 10.0, False) for m in range(2, 11)]
    script += [(11, 7.0, False)]
    for seq, (minute, temp, door) in enumerate(script):
        info = pub.publish(topic, _payload(t0 + timedelta(minutes=minute), seq, temp, door), qos=1)
    info.wait_for_publish(10)
    for seq, (minute, temp, door) in enumerate(script):  # a gateway replaying: duplicates
        info = pub.publish(topic, _payload(t0 + timedelta(minutes=minute), seq, temp, door), qos=1)
    info.wait_for_publish(10)
    wait_until(lambda: w.worker.stats.received >= 2 * len(script), 15, what="all messages")
    wait_until(lambda: w.worker.pending() == 0, 10, what="all committed")
    try:
        with psycopg.connect(registry_db) as conn:
            rows = conn.execute(
                "SELECT rule, status, started_at, raised_at, cleared_at, peak_temp_c FROM alarms"
            ).fetchall()
        assert rows == [
            (
                "temp_high",
                "cleared",
                t0 + timedelta(minutes=3),  # minute 2 is inside the 120 s door grace
                t0 + timedelta(minutes=8),
                t0 + timedelta(minutes=11),
                10.0,
            )
        ]
        kinds = "SELECT count(*) FROM findings WHERE kind = %s AND subject = 'fridge-1'"
        assert count(registry_db, kinds, "alarm_raised") == 1
        assert count(registry_db, kinds, "alarm_cleared") == 1
        # Raise and clear may commit in one batch or two: one NOTIFY per committing batch.
        notes = list(listener.notifies(timeout=5, stop_after=1))
        assert notes
        assert {n.channel for n in notes} == {"bk_findings"}
    finally:
        listener.close()
        pub.loop_stop()
        w.close()
