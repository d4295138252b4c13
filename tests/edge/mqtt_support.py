"""A recording MQTT subscriber for the delivery tests."""

from __future__ import annotations

import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bkcommon.settings import parse_mqtt_url
from tests.support.services import wait_until


class Recorder:
    """Subscribes with QoS 1 (optionally a persistent session) and keeps every message."""

    def __init__(self, url: str, topic: str, client_id: str, persistent: bool = False) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.topic = topic
        ep = parse_mqtt_url(url)
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not persistent
        )
        c.reconnect_delay_set(1, 1)
        c.on_connect = self._on_connect
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_message = self._on_message
        c.connect(ep.host, ep.port, 30)
        c.loop_start()
        self.client = c
        wait_until(self._subscribed.is_set, 10, what="SUBACK")

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self) -> list[bytes]:
        """Payloads received so far."""
        with self._lock:
            return [p for _, p, _ in self.messages]

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
