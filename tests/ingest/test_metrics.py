"""The ingest worker's Prometheus endpoint as a scrape sees it after real traffic."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bkcommon.topics import reading_topic, readings_topic
from ingest.worker import _serve_metrics
from tests.ingest.conftest import RunningWorker, publisher
from tests.support.services import free_port, wait_until

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _reading(i: int) -> dict[str, object]:
    ts = (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    return {"schema_version": 1, "ts": ts, "seq": i, "temp_c": 4.0}


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_readings_batches_dead_letters_and_lag_are_scraped(
    start_worker: Callable[..., RunningWorker], registry_db: str, mqtt_url: str, topic_prefix: str
) -> None:
    w = start_worker(mqtt_url)
    port = free_port()
    server = _serve_metrics(w.worker, port, addr="127.0.0.1")
    try:
        pub = publisher(mqtt_url)
        batch = {"readings": [_reading(i) for i in range(300)]}
        pub.publish(readings_topic("site-a", "fridge-1", topic_prefix), json.dumps(batch), qos=1)
        bad = pub.publish(reading_topic("site-a", "fridge-1", topic_prefix), b"not json", qos=1)
        bad.wait_for_publish(10)
        wait_until(lambda: w.worker.stats.received >= 2, 15, what="2 messages")
        wait_until(lambda: w.worker.pending() == 0, 10, what="all committed")
        m = _scrape(port)
        empty: frozenset[tuple[str, str]] = frozenset()
        assert m[("bk_ingest_inserted_total", empty)] == 300
        assert m[("bk_ingest_readings_received_total", empty)] == 300
        assert sum(v for (n, _), v in m.items() if n == "bk_ingest_dead_letters_total") == 1
        assert m[("bk_ingest_lag_seconds", empty)] == 0  # nothing waits
        assert m[("bk_ingest_last_commit_timestamp_seconds", empty)] > T0.timestamp()
        # the 300-reading batch went into one commit: counted in the bucket le=1000, not le=100
        count = m[("bk_ingest_batch_readings_count", empty)]
        assert count >= 1
        assert m[("bk_ingest_batch_readings_sum", empty)] == 300
        le1000 = m[("bk_ingest_batch_readings_bucket", frozenset({("le", "1000.0")}))]
        le100 = m[("bk_ingest_batch_readings_bucket", frozenset({("le", "100.0")}))]
        assert le1000 - le100 == 1
        assert m[("bk_ingest_batch_readings_bucket", frozenset({("le", "+Inf")}))] == count
        pub.loop_stop()
    finally:
        server.shutdown()
        server.server_close()
