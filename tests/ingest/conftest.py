"""Fixtures of the ingest tests: a registry in the test database, a worker in a thread."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bkcommon.settings import CommonSettings, parse_mqtt_url
from bkcommon.sitefile import parse_site_file
from brightkitchen.registry import sync_registry
from ingest.settings import IngestSettings
from ingest.worker import IngestWorker
from tests.support.services import wait_until

SITE = {
    "version": 1,
    "regions": [{"id": "r1", "name": "Region"}],
    "sites": [
        {
            "id": "site-a",
            "name": "Canteen A",
            "region": "r1",
            "sensors": [
                {"id": "fridge-1", "profile": "fridge"},
                {"id": "freezer-1", "profile": "freezer"},
                {"id": "zb-1", "profile": "fridge", "zigbee_name": "kitchen_fridge"},
            ],
            "edge_boxes": [{"id": "box-a", "cameras": [{"id": "cam-a", "url": "rtsp://x/1"}]}],
        },
        {
            "id": "site-b",
            "name": "Canteen B",
            "region": "r1",
            "sensors": [{"id": "fridge-b", "profile": "fridge"}],
        },
    ],
}


SITES_REGISTERED = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def registry_db(db_url: str) -> str:
    """A test database with the registry of SITE synced into it."""
    with psycopg.connect(db_url) as conn:
        sync_registry(conn, parse_site_file(SITE))
        # Registered before the fixed reading times of the tests (ingest refuses readings
        # stamped long before their site's registration).
        conn.execute("UPDATE sites SET created_at = %s", (SITES_REGISTERED,))
    return db_url


def publisher(url: str) -> mqtt.Client:
    """A connected paho v5 client with its network loop running."""
    ep = parse_mqtt_url(url)
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    c.connect(ep.host, ep.port)
    c.loop_start()
    return c


def count(db_url: str, sql: str, *params: Any) -> int:
    """Run a scalar count query."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(sql, params or None).fetchone()
    assert row is not None
    return int(row[0])


class RunningWorker:
    """An IngestWorker in a background thread, stopped by ``close()``."""

    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        wait_until(lambda: worker.connected.is_set() or self.error, 15, what="worker to connect")
        if self.error:
            raise self.error

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:  # surfaced to the test
            self.error = exc

    def close(self) -> None:
        """Stop the worker and wait for it (it flushes and acks first)."""
        self.worker.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()
        if self.error:
            raise self.error


@pytest.fixture
def start_worker(registry_db: str, topic_prefix: str) -> Iterator[Callable[..., RunningWorker]]:
    """Factory starting in-process workers on the test database, topic prefix and a broker."""
    running: list[RunningWorker] = []

    def _start(mqtt_url: str, **overrides: Any) -> RunningWorker:
        common = CommonSettings(
            database_url=registry_db,  # type: ignore[arg-type]
            mqtt_url=mqtt_url,
            mqtt_prefix=topic_prefix,
        )
        opts: dict[str, Any] = {
            "group": f"g{uuid.uuid4().hex[:8]}",
            "client_id": f"bk-ingest-test-{uuid.uuid4().hex[:8]}",
            "flush_interval_ms": 20,
            "directory_refresh_s": 1,
            # The gap guard re-writes what it sees until the group announces itself, which
            # would blur the duplicate counts these tests check; its own tests turn it on.
            "guard": False,
        }
        opts.update(overrides)
        w = RunningWorker(IngestWorker(common, IngestSettings(**opts)))
        running.append(w)
        return w

    yield _start
    for w in running:
        if w.thread.is_alive():
            w.close()
