"""Messages the broker drops at its queue limits: a real Mosquitto made to drop (a persistent
subscriber away, ``max_queued_messages`` small), read by real ingest workers from ``$SYS``
and exposed for the ``BkBrokerDroppedMessages`` alert."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bkcommon.settings import CommonSettings
from ingest.settings import IngestSettings
from ingest.worker import DROPPED_SETTLE_S, IngestWorker, _serve_metrics
from tests.support.services import Broker, private_broker, wait_until

QUEUE_LIMIT = 5


@pytest.fixture
def dropping_broker() -> Iterator[Broker]:
    """Mosquitto with the deploy/ configuration but a queue of 5 per client and $SYS every s."""
    with private_broker(max_queued_messages=str(QUEUE_LIMIT), sys_interval="1") as b:
        yield b


def _client(broker: Broker, client_id: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    c.connect("127.0.0.1", broker.port, clean_start=False, properties=props)
    c.loop_start()
    wait_until(c.is_connected, 5, what=f"{client_id} to connect")
    return c


def _leave_a_subscriber_away(broker: Broker) -> None:
    """A persistent session subscribed to t/# whose client goes away: what is published to
    t/# now queues for it, up to the limit, and the rest is dropped."""
    away = _client(broker, "away-" + uuid.uuid4().hex[:6])
    granted = threading.Event()
    away.on_subscribe = lambda *_args: granted.set()
    away.subscribe("t/#", qos=1)
    assert granted.wait(5), "the subscription was not granted"
    away.disconnect()
    away.loop_stop()


def _publish(broker: Broker, n: int) -> None:
    pub = _client(broker, "pub-" + uuid.uuid4().hex[:6])
    infos = [pub.publish("t/x", f"{i}", qos=1) for i in range(n)]
    infos[-1].wait_for_publish(10)
    pub.disconnect()
    pub.loop_stop()


def _worker(broker: Broker, name: str) -> tuple[IngestWorker, mqtt.Client]:
    common = CommonSettings(database_url="postgresql://unused/x", mqtt_url=broker.url)
    worker = IngestWorker(common, IngestSettings(client_id=name, group=""))
    client = worker._make_client()
    client.loop_start()
    wait_until(worker.connected.is_set, 5, what="the ingest worker to connect")
    return worker, client


def _metric(worker: IngestWorker) -> str | None:
    server = _serve_metrics(worker, 0, addr="127.0.0.1")
    try:
        text = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=5).text
    finally:
        server.shutdown()
        server.server_close()
    lines = [ln for ln in text.splitlines() if ln.startswith("bk_ingest_broker_dropped_messages")]
    return lines[0] if lines else None


def test_dropped_messages_are_counted_from_the_broker_and_exposed(
    dropping_broker: Broker,
) -> None:
    early, early_client = _worker(dropping_broker, "ing-early")
    try:
        # nothing dropped yet: the broker sends 0 or nothing; either way it reads 0
        wait_until(lambda: early.broker_dropped_reported() == 0, DROPPED_SETTLE_S + 3)
        assert _metric(early) == "bk_ingest_broker_dropped_messages_total 0.0"

        _leave_a_subscriber_away(dropping_broker)
        _publish(dropping_broker, 30)
        # 5 queue for the absent subscriber, the other 25 are dropped (the worker itself
        # subscribes to sensor topics only, so it takes none of them)
        wait_until(lambda: early.broker_dropped == 25, 10, what="the broker's dropped count")
        assert _metric(early) == "bk_ingest_broker_dropped_messages_total 25.0"

        # a worker that connects later gets the count at once (the broker retains it)
        late, late_client = _worker(dropping_broker, "ing-late")
        try:
            wait_until(lambda: late.broker_dropped == 25, 3, what="the retained count")
            _publish(dropping_broker, 4)
            wait_until(lambda: late.broker_dropped == 29 and early.broker_dropped == 29, 10)
        finally:
            late_client.disconnect()
            late_client.loop_stop()
    finally:
        early_client.disconnect()
        early_client.loop_stop()


def test_a_payload_that_is_not_a_count_changes_nothing() -> None:
    worker = IngestWorker(CommonSettings(database_url="postgresql://unused/x"), IngestSettings())
    for bad in (b"", b"-1", b"1e9", b"12 34", b"9" * 40, b"\xff"):
        worker._on_broker_dropped(bad)
        assert worker.broker_dropped is None
    worker._on_broker_dropped(b"17\n")
    assert worker.broker_dropped == 17
    assert worker.broker_dropped_reported() == 17


def test_a_broker_without_the_count_is_not_asked_for_it(dropping_broker: Broker) -> None:
    """EMQX has no such topic and its ACL would deny it (``deny_action: disconnect``): with
    ``BK_INGEST_BROKER_DROP_COUNT=false`` the worker subscribes to its data topics only."""
    common = CommonSettings(database_url="postgresql://unused/x", mqtt_url=dropping_broker.url)
    off = IngestSettings(client_id="ing-off", group="", broker_drop_count=False)
    worker = IngestWorker(common, off)
    client = worker._make_client()
    client.loop_start()
    try:
        wait_until(worker.connected.is_set, 5, what="the ingest worker to connect")
        _leave_a_subscriber_away(dropping_broker)
        _publish(dropping_broker, 10)
        time.sleep(DROPPED_SETTLE_S + 1.5)  # $SYS every second: the count was sent by now
        assert worker.broker_dropped is None
        assert worker.broker_dropped_reported() is None
        assert _metric(worker) is None
    finally:
        client.disconnect()
        client.loop_stop()
