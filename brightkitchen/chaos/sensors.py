"""Numbered readings over MQTT QoS 1, re-sent until the broker acknowledges them.

Each simulated sensor numbers its readings (``seq`` 0, 1, 2, ...) and stamps each with the
time it was taken; that pair is what the reconciliation looks for in ``sensor_readings``.
Some sensors publish one reading per message, others gateway batches (``.../readings``),
so both topic kinds cross every fault. A message is forgotten only when its PUBACK
arrives; one still unacknowledged after ``resend_after_s`` (the broker or the link died
with it in flight) is published again, as a real sensor's firmware does. Messages go out
in a bounded window, so an outage does not pile thousands into paho's memory.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bkcommon.messages import ReadingBatch, SensorReading, encode
from bkcommon.settings import parse_mqtt_url
from bkcommon.timeutil import utcnow
from bkcommon.topics import reading_topic, readings_topic

logger = logging.getLogger(__name__)

Key = tuple[str, int]  # (sensor id, seq)


@dataclass(frozen=True, slots=True)
class ChaosSensor:
    """One numbered sensor: where it publishes and how many readings go in one message."""

    site_id: str
    sensor_id: str
    per_message: int = 1  # 1 = ``.../reading``; more = gateway batches on ``.../readings``


@dataclass
class _Message:
    topic: str
    payload: bytes
    keys: tuple[Key, ...]
    sent_at: float | None = None


@dataclass
class SensorCounts:
    """What the sensors produced, published and had acknowledged."""

    produced: dict[str, int] = field(default_factory=dict)  # sensor -> readings taken
    acked: set[Key] = field(default_factory=set)
    publishes: int = 0
    resends: int = 0
    disconnects: int = 0


class NumberedSensors:
    """Publishes numbered readings of ``sensors`` at ``rate_hz`` each, in a background thread."""

    def __init__(
        self,
        mqtt_url: str,
        prefix: str,
        sensors: list[ChaosSensor],
        *,
        rate_hz: float = 5.0,
        window: int = 200,
        resend_after_s: float = 10.0,
    ) -> None:
        """Configure the client; :meth:`start` connects and begins producing."""
        self.prefix = prefix
        self.sensors = sensors
        self.rate_hz = rate_hz
        self.window = window
        self.resend_after_s = resend_after_s
        self.counts = SensorCounts(produced={s.sensor_id: 0 for s in sensors})
        self._lock = threading.Lock()
        self._pending: dict[int, _Message] = {}  # message number -> message
        self._mids: dict[int, int] = {}  # paho mid -> message number
        self._buffer: dict[str, list[SensorReading]] = {s.sensor_id: [] for s in sensors}
        self._last_ts: dict[str, datetime] = {}
        self._next_msg = 0
        self._producing = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        ep = parse_mqtt_url(mqtt_url)
        self._ep = ep
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"chaos-sensors-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        c.max_inflight_messages_set(window)
        c.reconnect_delay_set(min_delay=1, max_delay=2)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        self.client = c

    # ---------------------------------------------------------------- paho callbacks
    def _on_connect(self, *args: object) -> None:
        reason = args[3]
        if not getattr(reason, "is_failure", False):
            self._connected.set()

    def _on_disconnect(self, *args: object) -> None:
        if self._connected.is_set():
            self.counts.disconnects += 1
        self._connected.clear()

    def _on_publish(self, client: object, userdata: object, mid: int, *rest: object) -> None:
        with self._lock:
            num = self._mids.pop(mid, None)
            if num is None:
                return
            msg = self._pending.pop(num, None)
            if msg is not None:
                self.counts.acked.update(msg.keys)

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Connect (retrying in the background) and start producing readings."""
        self.client.connect_async(self._ep.host, self._ep.port, keepalive=10)
        self.client.loop_start()
        self._producing.set()
        self._thread = threading.Thread(target=self._run, name="chaos-sensors", daemon=True)
        self._thread.start()

    def stop_producing(self) -> None:
        """Take no more readings (what was taken is still sent until acknowledged)."""
        self._producing.clear()

    def unacked(self) -> int:
        """Messages not yet acknowledged by the broker."""
        with self._lock:
            return len(self._pending)

    def close(self) -> None:
        """Stop the thread and disconnect."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()

    # ---------------------------------------------------------------- the loop
    def _take(self, sensor: ChaosSensor) -> None:
        sid = sensor.sensor_id
        seq = self.counts.produced[sid]
        ts = utcnow()
        last = self._last_ts.get(sid)
        if last is not None and ts <= last:
            ts = last + timedelta(microseconds=1)
        self._last_ts[sid] = ts
        reading = SensorReading(
            ts=ts,
            seq=seq,
            temp_c=round(3.0 + (seq % 20) * 0.1, 2),
            door_open=False,
            battery_pct=90.0,
        )
        self.counts.produced[sid] = seq + 1
        buf = self._buffer[sid]
        buf.append(reading)
        if len(buf) >= sensor.per_message:
            self._enqueue(sensor, buf)
            self._buffer[sid] = []

    def _enqueue(self, sensor: ChaosSensor, readings: list[SensorReading]) -> None:
        if sensor.per_message == 1:
            topic = reading_topic(sensor.site_id, sensor.sensor_id, self.prefix)
            payload = encode(readings[0])
        else:
            topic = readings_topic(sensor.site_id, sensor.sensor_id, self.prefix)
            payload = encode(ReadingBatch(readings=readings))
        keys = tuple((sensor.sensor_id, int(r.seq or 0)) for r in readings)
        with self._lock:
            self._pending[self._next_msg] = _Message(topic, payload, keys)
            self._next_msg += 1

    def _flush_partial(self) -> None:
        for sensor in self.sensors:
            buf = self._buffer[sensor.sensor_id]
            if buf:
                self._enqueue(sensor, buf)
                self._buffer[sensor.sensor_id] = []

    def _send(self) -> None:
        now = time.monotonic()
        with self._lock:
            in_flight = sum(
                1
                for m in self._pending.values()
                if m.sent_at is not None and now - m.sent_at < self.resend_after_s
            )
            room = self.window - in_flight
            due = [
                (n, m)
                for n, m in self._pending.items()
                if m.sent_at is None or now - m.sent_at >= self.resend_after_s
            ]
        for n, m in due[: max(0, room)]:
            info = self.client.publish(m.topic, m.payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                return  # refused outright: try again on the next tick
            with self._lock:  # NO_CONN: paho queued it and sends it on reconnect
                if m.sent_at is not None:
                    self.counts.resends += 1
                m.sent_at = now
                self._mids[info.mid] = n
                self.counts.publishes += 1
            if info.rc == mqtt.MQTT_ERR_NO_CONN:
                return

    def _run(self) -> None:
        period = 1.0 / self.rate_hz
        next_take = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if self._producing.is_set():
                while next_take <= now:
                    for s in self.sensors:
                        self._take(s)
                    next_take += period
            else:
                self._flush_partial()
                next_take = now
            if self._connected.is_set():
                self._send()
            self._stop.wait(0.02)
