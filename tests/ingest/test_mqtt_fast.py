"""The lean paho receive path against the real Mosquitto: every message arrives intact
(v5 properties, packets straddling reads, QoS 0 and 1, both protocol versions) and
``ack_many`` acknowledges so that a reconnect redelivers nothing."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bkcommon.settings import parse_mqtt_url
from ingest.mqtt_fast import FastClient, fast_path_supported
from tests.ingest.conftest import publisher
from tests.support.services import wait_until


class Sink:
    """Collects what the fast client hands over."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.got: list[tuple[bytes, bytes, int, int]] = []
        self.retained: list[bool] = []

    def __call__(self, topic: bytes, payload: bytes, mid: int, qos: int, retained: bool) -> None:
        with self.lock:
            self.got.append((topic, payload, mid, qos))
            self.retained.append(retained)


def _connect(url: str, client_id: str, proto: str, sink: Sink, topic: str) -> FastClient:
    ep = parse_mqtt_url(url)
    kwargs: dict[str, Any] = {"client_id": client_id, "manual_ack": True}
    if proto == "5":
        kwargs["protocol"] = mqtt.MQTTv5
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600
        clean: Any = False
    else:
        kwargs.update(protocol=mqtt.MQTTv311, clean_session=False)
        props = None
        clean = mqtt.MQTT_CLEAN_START_FIRST_ONLY
    c = FastClient(CallbackAPIVersion.VERSION2, raw_handler=sink, **kwargs)
    subscribed = threading.Event()
    c.on_connect = lambda cl, *_a: cl.subscribe(topic, qos=1)
    c.on_subscribe = lambda *_a: subscribed.set()
    c.connect(ep.host, ep.port, clean_start=clean, properties=props)
    c.loop_start()
    assert subscribed.wait(10)
    return c


def _broker_read(c: FastClient, topic_prefix: str) -> None:
    """Wait until the broker has read everything sent so far: it answers packets in order,
    so its UNSUBACK proves it read the acks. Closing the socket while the broker still
    sends can reset the connection, and a loaded broker then drops the acks it had not read
    yet (seen once: 66 messages came again on the next connection)."""
    read = threading.Event()
    c.on_unsubscribe = lambda *_a: read.set()
    c.unsubscribe(f"{topic_prefix}/nothing")
    assert read.wait(10)


def test_paho_internals_present() -> None:
    assert fast_path_supported()


@pytest.mark.parametrize("proto", ["5", "3.1.1"])
def test_every_message_arrives_intact_and_acks_stick(
    mqtt_url: str, topic_prefix: str, proto: str
) -> None:
    cid = f"fast-{uuid.uuid4().hex[:8]}"
    topic = f"{topic_prefix}/t/#"
    sink = Sink()
    c = _connect(mqtt_url, cid, proto, sink, topic)
    pub = publisher(mqtt_url)
    sent: list[tuple[bytes, bytes, int]] = []
    try:
        big = bytes(range(256)) * 600  # 150 KiB: spans several 64 KiB reads
        acked = 0

        def _all_in() -> bool:
            # acknowledge as they come: brokers cap unacknowledged messages in flight
            nonlocal acked
            with sink.lock:
                new = sink.got[acked:]
            c.ack_many([m for _t, _p, m, q in new if q == 1])
            acked += len(new)
            return acked >= len(sent)

        for i in range(3000):
            t = f"{topic_prefix}/t/{i % 7}/温度"
            payload = big if i % 1000 == 500 else f'{{"i": {i}}}'.encode()
            qos = 0 if i % 10 == 0 else 1
            props = None
            if i % 3 == 0:
                props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                props.UserProperty = ("k", "v" * (i % 50))
                props.ContentType = "application/json"
            pub.publish(t, payload, qos=qos, properties=props)
            sent.append((t.encode(), payload, qos))
            if i % 250 == 249:  # stay under the broker's queue limit for one client (1000)
                wait_until(_all_in, 30, what=f"{i + 1} messages")
        with sink.lock:
            got = list(sink.got)
        # QoS 0 may overtake QoS 1 messages waiting for the broker's in-flight window
        assert sorted((t, p, q) for t, p, _m, q in got) == sorted(sent)
        assert [(t, p) for t, p, _m, q in got if q == 1] == [(t, p) for t, p, q in sent if q == 1]
        assert all(m > 0 for _t, _p, m, q in got if q == 1)
        wait_until(lambda: not c.want_write(), 10, what="acks written")
        _broker_read(c, topic_prefix)
    finally:
        c.disconnect()
        c.loop_stop()
    # Reconnect to the same session: everything was acknowledged, nothing comes again;
    # a new message still arrives.
    sink2 = Sink()
    c2 = _connect(mqtt_url, cid, proto, sink2, topic)
    try:
        pub.publish(f"{topic_prefix}/t/last", b"last", qos=1).wait_for_publish(5)
        wait_until(lambda: len(sink2.got) >= 1, 10, what="the new message")
        with sink2.lock:
            assert [(t, p) for t, p, _m, _q in sink2.got] == [
                (f"{topic_prefix}/t/last".encode(), b"last")
            ]
    finally:
        c2.disconnect()
        c2.loop_stop()
        pub.disconnect()
        pub.loop_stop()


def test_unacked_messages_are_redelivered(mqtt_url: str, topic_prefix: str) -> None:
    cid = f"fast-{uuid.uuid4().hex[:8]}"
    topic = f"{topic_prefix}/u/#"
    sink = Sink()
    c = _connect(mqtt_url, cid, "5", sink, topic)
    pub = publisher(mqtt_url)
    try:
        for i in range(10):
            pub.publish(f"{topic_prefix}/u/x", str(i).encode(), qos=1)
        wait_until(lambda: len(sink.got) >= 10, 10, what="10 messages")
        c.ack_many([m for _t, _p, m, _q in sink.got[:10]])
        for i in range(10, 20):
            pub.publish(f"{topic_prefix}/u/x", str(i).encode(), qos=1)
        wait_until(lambda: len(sink.got) >= 20, 10, what="20 messages")
        wait_until(lambda: not c.want_write(), 10, what="acks written")
        _broker_read(c, topic_prefix)
    finally:
        c.disconnect()
        c.loop_stop()
    sink2 = Sink()
    c2 = _connect(mqtt_url, cid, "5", sink2, topic)
    try:
        wait_until(lambda: len(sink2.got) >= 10, 10, what="redelivery")
        assert sorted(int(p) for _t, p, _m, _q in sink2.got) == list(range(10, 20))
    finally:
        c2.disconnect()
        c2.loop_stop()
        pub.disconnect()
        pub.loop_stop()


@pytest.mark.parametrize("proto", ["5", "3.1.1"])
def test_the_retain_flag_marks_what_a_subscription_replays(
    mqtt_url: str, topic_prefix: str, proto: str
) -> None:
    """A retained message sent because we subscribed says so; live traffic does not (a
    retained Zigbee2MQTT state, stamped on arrival, was a new reading on every reconnect)."""
    topic = f"{topic_prefix}/r/{proto}/dev"
    pub = publisher(mqtt_url)
    try:
        pub.publish(topic, b"old", qos=1, retain=True).wait_for_publish(10)
        sink = Sink()
        c = _connect(mqtt_url, f"fast-{uuid.uuid4().hex[:8]}", proto, sink, topic)
        try:
            wait_until(lambda: len(sink.got) >= 1, 10, what="the retained message")
            pub.publish(topic, b"new", qos=1).wait_for_publish(10)
            wait_until(lambda: len(sink.got) >= 2, 10, what="the live message")
            assert [(p, r) for (_t, p, _m, _q), r in zip(sink.got, sink.retained, strict=True)] == [
                (b"old", True),
                (b"new", False),
            ]
        finally:
            c.disconnect()
            c.loop_stop()
        pub.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)  # clear it
    finally:
        pub.disconnect()
        pub.loop_stop()
