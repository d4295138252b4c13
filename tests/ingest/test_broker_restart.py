"""Zero loss across Mosquitto restarts with a shared subscription (the gap guard).

A private Mosquitto with the production configuration is stopped (SIGTERM or SIGKILL)
while a publisher sends numbered readings at QoS 1, keeping what is not yet acknowledged
and re-sending it after reconnecting. Right after the broker is back, and before the
worker's first reconnection attempt, a second publisher sends a block the broker
acknowledges while no shared subscription exists: Mosquitto does not restore those, so
without the guard that block was lost. Every reading the broker acknowledged (PUBACK
received) must end in the database exactly once.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bkcommon.settings import parse_mqtt_url
from bkcommon.topics import reading_topic
from tests.ingest.conftest import RunningWorker, count
from tests.support.services import Broker, wait_until

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
GAP_BLOCK = 300


def _payload(i: int) -> bytes:
    ts = (T0 + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
    return json.dumps({"ts": ts, "seq": i, "temp_c": 4.0}).encode()


class NumberedPublisher:
    """Publishes readings numbered from ``first`` at QoS 1 with a persistent session;
    paho keeps unacknowledged messages and re-sends them after reconnecting. ``acked``
    holds the numbers whose PUBACK arrived."""

    def __init__(self, port: int, topic: str, first: int) -> None:
        self.topic = topic
        self.next = first
        self.acked: set[int] = set()
        self._by_mid: dict[int, int] = {}
        self._early: set[int] = set()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_publish = self._on_publish
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, *rest: Any) -> None:
        with self._lock:
            n = self._by_mid.pop(mid, None)
            if n is None:
                self._early.add(mid)  # acknowledged before publish() returned its mid
            else:
                self.acked.add(n)

    def publish(self, n: int = 1) -> None:
        """Publish the next ``n`` readings (queued by paho while disconnected)."""
        for _ in range(n):
            # paho calls on_publish holding its own lock: never publish holding ours
            info = self.client.publish(self.topic, _payload(self.next), qos=1)
            with self._lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    self.acked.add(self.next)
                else:
                    self._by_mid[info.mid] = self.next
            self.next += 1

    def unacked(self) -> int:
        with self._lock:
            return len(self._by_mid)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _stream(pub: NumberedPublisher, stop: threading.Event) -> None:
    while not stop.is_set():
        pub.publish(5)
        time.sleep(0.01)


def _seqs(db_url: str) -> list[int]:
    with psycopg.connect(db_url) as conn:
        return [
            int(r[0])
            for r in conn.execute(
                "SELECT seq FROM sensor_readings WHERE sensor_id = 'fridge-1' ORDER BY seq"
            )
        ]


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "sigkill"])
def test_no_acknowledged_reading_is_lost_across_a_broker_restart(
    hard: bool,
    broker: Broker,
    registry_db: str,
    topic_prefix: str,
    start_worker: Callable[..., RunningWorker],
) -> None:
    # The worker waits 3 s before its first reconnection attempt: the gap is deterministic.
    w = start_worker(
        broker.url, guard=True, guard_check_s=0.2, marker_interval_s=0.5, broker_backoff_min_s=3
    )
    guard = w.worker.guard
    assert guard is not None
    wait_until(lambda: guard.active and not guard.gap, 15, what="the guard to see the group")
    if hard:
        time.sleep(1.5)  # SIGKILL keeps what the last autosave (every second) wrote
    topic = reading_topic("site-a", "fridge-1", topic_prefix)
    pub = NumberedPublisher(broker.port, topic, 0)
    stop = threading.Event()
    streaming = threading.Thread(target=_stream, args=(pub, stop), daemon=True)
    streaming.start()
    wait_until(lambda: len(pub.acked) >= 200, 10, what="readings before the restart")

    broker.stop(hard=hard)
    time.sleep(0.5)
    broker.start()
    gap = NumberedPublisher(broker.port, topic, 1_000_000)
    gap.publish(GAP_BLOCK)
    wait_until(lambda: len(gap.acked) == GAP_BLOCK, 10, what="the gap block acknowledged")
    gap_before_resubscribe = not w.worker.connected.is_set()

    wait_until(w.worker.connected.is_set, 15, what="the worker to reconnect")
    time.sleep(0.5)
    stop.set()
    streaming.join(5)
    wait_until(lambda: pub.unacked() == 0, 15, what="the publisher's re-sends acknowledged")
    acked = pub.acked | gap.acked
    try:
        wait_until(lambda: acked <= set(_seqs(registry_db)), 20, what="acknowledged readings")
    except AssertionError as exc:
        missing = sorted(acked - set(_seqs(registry_db)))
        raise AssertionError(
            f"{len(missing)} of {len(acked)} acknowledged readings missing (first {missing[:5]},"
            f" {sum(m >= 1_000_000 for m in missing)} of the gap block); guard gap={guard.gap}"
            f" gaps_closed={guard.gaps_closed} written_in_gap={guard.written_in_gap}"
        ) from exc
    finally:
        pub.close()
        gap.close()
    seqs = _seqs(registry_db)
    assert len(seqs) == len(set(seqs)), "a reading was stored twice"
    assert acked <= set(seqs)
    assert gap_before_resubscribe, "the worker resubscribed before the gap block: no gap tested"
    # every acknowledged reading is stored before the guard need see the group's next marker
    # (on a slow machine its gap closed a second after the last reading landed)
    wait_until(lambda: guard.gaps_closed >= 2, 10, what="the guard to leave gap mode again")
    assert count(registry_db, "SELECT count(*) FROM dead_letters") == 0


def test_one_guard_per_group_and_another_worker_takes_over(
    mqtt_url: str, start_worker: Callable[..., RunningWorker]
) -> None:
    opts = {"group": f"g{uuid.uuid4().hex[:8]}", "guard": True, "guard_check_s": 0.2}
    workers = [start_worker(mqtt_url, marker_interval_s=0.5, **opts) for _ in range(2)]
    guards = [w.worker.guard for w in workers]
    assert guards[0] is not None
    assert guards[1] is not None
    wait_until(lambda: any(g.active and not g.gap for g in guards), 10, what="a guard")
    time.sleep(0.6)  # both have tried for the lock by now
    assert [g.active for g in guards].count(True) == 1
    holder = 0 if guards[0].active else 1
    workers[holder].close()
    other = guards[1 - holder]
    wait_until(lambda: other.active and not other.gap, 10, what="the other worker's guard")


def test_a_worker_stopped_cleanly_leaves_its_share_to_the_others(
    mqtt_url: str,
    start_worker: Callable[..., RunningWorker],
    registry_db: str,
    topic_prefix: str,
) -> None:
    # Mosquitto queues shared messages to offline members: without leaving the group, the
    # stopped worker's session would take half of what follows, and keep it until that
    # client id comes back.
    opts = {"group": f"g{uuid.uuid4().hex[:8]}", "guard": True, "guard_check_s": 0.2}
    leaving = f"bk-ingest-leaving-{uuid.uuid4().hex[:6]}"
    start_worker(mqtt_url, client_id=leaving, **opts).close()
    start_worker(mqtt_url, **opts)
    topic = reading_topic("site-a", "fridge-1", topic_prefix)
    pub = NumberedPublisher(parse_mqtt_url(mqtt_url).port, topic, 0)
    pub.publish(200)
    wait_until(lambda: len(_seqs(registry_db)) == 200, 15, what="200 readings by the other worker")
    back = start_worker(mqtt_url, client_id=leaving, **opts)
    time.sleep(1.0)
    assert back.worker.stats.received == 0
    pub.close()
