"""Deliver the outbox to the broker with QoS 1 and keep the box's retained status.

A sender thread takes outbox rows oldest-first into a bounded in-flight window and
publishes them with QoS 1; a row is deleted only when its PUBACK arrives. paho
calls ``on_publish`` while holding its own lock, so the callback only queues the
message id and the sender thread does the bookkeeping (no lock-order deadlock, no
SQLite writes on the network thread). After a disconnect paho resends its
in-flight messages with the same ids; a row still unacked after ``resend_after_s``
while connected is published again (same event id, the backend dedupes), and a
restarted process sends every row still on disk. Delivery is at least once;
event ids make the effect exactly once.

The client speaks MQTT 5 so that a PUBACK says whether the broker took the message: under
3.1.1 Mosquitto acknowledges a publish its ACL denies like any other, and the row would be
deleted undelivered. A broker that answers a v5 CONNECT with "unsupported protocol version"
gets 3.1.1; one that just drops it (amqtt, the demo's embedded broker) needs
``BK_EDGE_MQTT_PROTOCOL=3.1.1``. A refusal of the message itself (too large) sets the row
aside (kept in the outbox file, ``brightkitchen edge outbox`` lists it) and the rest flow; any other
refusal (not authorised, quota) keeps the row and pauses sending with back-off. A row
larger than the broker's Maximum Packet Size (from its CONNACK) is set aside before it is
sent: the broker would drop the connection on it again and again.

The last will is a retained ``EdgeStatus`` with ``online=false`` on the status
topic; while connected, a retained ``online=true`` status is published on connect
and every ``status_interval_s``.

Kitchen-display alerts are published directly with QoS 1 and are not stored in
the outbox: a pop-up that arrives hours late is noise, while the violation
itself (with its evidence) is in the outbox and reaches the backend.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bkcommon.messages import MAX_PAYLOAD_BYTES, TIME_FLOOR, Alert, EdgeStatus, encode
from bkcommon.settings import parse_mqtt_url
from bkcommon.timeutil import utcnow
from bkcommon.topics import DEFAULT_PREFIX, alert_topic, status_topic
from edge.outbox import Outbox

logger = logging.getLogger(__name__)

MESSAGE_REFUSALS = frozenset({0x95, 0x99})
"""PUBACK reasons about the message itself (packet too large, payload format invalid): it
can never be delivered, so it is set aside and the rows behind it go on."""
REFUSAL_PAUSE_S = 5.0
REFUSAL_PAUSE_MAX_S = 300.0

StatusFn = Callable[[], EdgeStatus]


class EdgePublisher:
    """MQTT side of the box: outbox sender, retained status with last will, alerts."""

    def __init__(
        self,
        *,
        mqtt_url: str,
        client_id: str,
        site_id: str,
        box_id: str,
        outbox: Outbox,
        prefix: str = DEFAULT_PREFIX,
        status_fn: StatusFn | None = None,
        inflight_max: int = 20,
        mqtt_v5: bool = True,
        resend_after_s: float = 60.0,
        status_interval_s: float = 30.0,
        keepalive_s: int = 30,
        reconnect_max_s: int = 10,
        on_ack: Callable[[int], None] | None = None,
    ) -> None:
        """Configure the client; nothing connects until :meth:`start`."""
        self.outbox = outbox
        self.site_id = site_id
        self.box_id = box_id
        self.status_topic = status_topic(site_id, box_id, prefix)
        self.alert_topic = alert_topic(site_id, prefix)
        self._status_fn = status_fn or self._default_status
        self._inflight_max = inflight_max
        self._resend_after_s = resend_after_s
        self._status_interval_s = status_interval_s
        self._keepalive_s = keepalive_s
        self._on_ack = on_ack
        self._acks: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._max_packet: int | None = None  # the broker's Maximum Packet Size (CONNACK)
        self._refusals = 0  # refusals since the last PUBACK that took a row
        self._paused_until = 0.0  # monotonic; sending waits after a refusal
        self.refused_total = 0
        self._inflight: dict[int, tuple[int, float]] = {}  # mid -> (row id, sent monotonic)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._status_due = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn_gen = 0
        self.acked_total = 0

        self._endpoint = parse_mqtt_url(mqtt_url)
        self._client_id = client_id
        self._reconnect_max_s = reconnect_max_s
        self._downgrade = threading.Event()  # the broker speaks only MQTT 3.1.1
        # MQTT 5: a PUBACK carries a reason code, so a publish the broker refuses (ACL,
        # quota) is told apart from one it took; 3.1.1 acks both alike.
        self.client = self._make_client(mqtt.MQTTv5 if mqtt_v5 else mqtt.MQTTv311)

    def _make_client(self, protocol: MQTTProtocolVersion) -> mqtt.Client:
        ep = self._endpoint
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self._client_id, protocol=protocol)
        if ep.username:
            c.username_pw_set(ep.username, ep.password)
        if ep.tls:
            c.tls_set(ca_certs=ep.ca_file, cert_reqs=ssl.CERT_REQUIRED)  # BK_MQTT_CA_FILE
        c.max_inflight_messages_set(self._inflight_max)
        c.reconnect_delay_set(min_delay=1, max_delay=self._reconnect_max_s)
        c.will_set(self.status_topic, self._offline_payload(), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        return c

    def _connect(self) -> None:
        ep = self._endpoint
        if self.client.protocol == mqtt.MQTTv5:
            self.client.connect_async(ep.host, ep.port, self._keepalive_s, clean_start=True)
        else:
            self.client.connect_async(ep.host, ep.port, self._keepalive_s)
        self.client.loop_start()

    def _speak_311(self) -> None:
        """The broker refused MQTT 5 (an embedded or old broker): talk 3.1.1 to it. Its
        PUBACKs carry no reason, so a publish it refuses cannot be told from one it took."""
        logger.warning(
            "broker %s:%d does not speak MQTT 5: using 3.1.1, where a publish the broker "
            "refuses (ACL) looks delivered; check the box's account on this broker",
            self._endpoint.host,
            self._endpoint.port,
        )
        old = self.client
        old.disconnect()
        old.loop_stop()
        self._inflight.clear()  # never sent on that client: the rows go again on the new one
        self.client = self._make_client(mqtt.MQTTv311)
        self._connect()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying while the broker is down) and start sending."""
        self._connect()
        self._thread = threading.Thread(target=self._run, name="edge-sender", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Publish ``online=false``, disconnect cleanly and stop the threads; rows stay on disk."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._connected.is_set():
            info = self.client.publish(
                self.status_topic, self._offline_payload(), qos=1, retain=True
            )
            try:
                info.wait_for_publish(timeout_s)
            except (RuntimeError, ValueError):
                logger.warning("could not publish offline status before stopping")
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        """True while connected to the broker."""
        return self._connected.is_set()

    def wake(self) -> None:
        """Tell the sender a row was put (it would notice within 200 ms anyway)."""
        self._wake.set()

    def in_flight(self) -> int:
        """Rows published and waiting for their PUBACK."""
        return len(self._inflight)

    # -- payloads ------------------------------------------------------------------

    def _default_status(self) -> EdgeStatus:
        st = self.outbox.stats()
        return EdgeStatus(
            box_id=self.box_id,
            ts=_stamp(),
            online=True,
            outbox_depth=st.depth,
            outbox_dropped_total=st.dropped_total,
        )

    def _offline_payload(self) -> bytes:
        return encode(EdgeStatus(box_id=self.box_id, ts=_stamp(), online=False))

    def publish_status(self) -> None:
        """Publish the retained online status now (also done periodically by the sender)."""
        self._status_due.set()
        self._wake.set()

    def publish_alert(self, alert: Alert) -> bool:
        """Publish a pop-up alert for other kitchen displays (QoS 1, not stored if offline)."""
        if not self.connected:
            logger.info("alert %s not sent to other displays: broker not connected", alert.alert_id)
            return False
        info = self.client.publish(self.alert_topic, encode(alert), qos=1)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    # -- paho callbacks (network thread) ---------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if reason_code.is_failure:
            if client.protocol == mqtt.MQTTv5 and getattr(reason_code, "value", 0) == 0x84:
                self._downgrade.set()  # "Unsupported protocol version": the sender switches
                self._wake.set()
                return
            logger.warning("broker refused connection: %s", reason_code)
            return
        logger.info(
            "connected to broker %s:%d as box %s",
            self._endpoint.host,
            self._endpoint.port,
            self.box_id,
        )
        self._max_packet = getattr(properties, "MaximumPacketSize", None)
        self._conn_gen += 1
        self._connected.set()
        self._status_due.set()
        self._wake.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any, properties: Any
    ) -> None:
        if self._connected.is_set():
            logger.warning(
                "disconnected from broker: %s; %d message(s) in flight will be resent",
                reason_code,
                len(self._inflight),
            )
        self._connected.clear()

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason_code: Any, properties: Any
    ) -> None:
        self._acks.put((mid, reason_code))
        self._wake.set()

    # -- sender thread --------------------------------------------------------------

    def _drain_acks(self) -> None:
        while True:
            try:
                mid, reason = self._acks.get_nowait()
            except queue.Empty:
                return
            entry = self._inflight.pop(mid, None)
            if entry is None:
                continue  # status, alert, or a superseded resend
            if getattr(reason, "is_failure", False):  # PUBACK >= 0x80: the broker dropped it
                self._refused(entry[0], reason)
                continue
            self._refusals = 0
            if self.outbox.ack(entry[0]):
                self.acked_total += 1
                if self._on_ack is not None:
                    self._on_ack(1)

    def _refused(self, row_id: int, reason: Any) -> None:
        """A PUBACK with a failure reason: the broker did not take the message.

        Only a refusal of this message itself (too large, malformed) sets it aside for good;
        anything else (not authorised, quota, the broker's own trouble) concerns every row,
        since all of them go to the one violation topic, so the row stays first in the
        outbox and sending pauses with back-off until the broker takes it.
        """
        code = int(getattr(reason, "value", 0x80))
        if code in MESSAGE_REFUSALS:
            logger.error("broker refused outbox row %d (%s): set aside", row_id, reason)
            self.outbox.set_aside(row_id, f"broker refused the publish: {reason}")
            return
        self.refused_total += 1
        self._refusals += 1
        pause = min(REFUSAL_PAUSE_MAX_S, REFUSAL_PAUSE_S * 2 ** min(self._refusals - 1, 10))
        self._paused_until = max(self._paused_until, time.monotonic() + pause)
        logger.error(
            "broker refused outbox row %d (%s, check the box's MQTT account and ACL): "
            "the row stays in the outbox; sending paused %.0f s",
            row_id,
            reason,
            pause,
        )

    def _send_status(self) -> None:
        try:
            payload = encode(self._status_fn())
        except Exception:
            logger.exception("building the status failed")
            return
        self.client.publish(self.status_topic, payload, qos=1, retain=True)

    def _fill_window(self) -> None:
        now = time.monotonic()
        if now < self._paused_until:
            return
        for mid, (row_id, sent) in list(self._inflight.items()):
            if now - sent > self._resend_after_s:
                logger.warning("row %d unacked for %.0fs: publishing it again", row_id, now - sent)
                del self._inflight[mid]
        room = self._inflight_max - len(self._inflight)
        if room <= 0:
            return
        busy = {row_id for row_id, _ in self._inflight.values()}
        for row in self.outbox.peek(room, exclude=busy):
            size = len(row.payload) + len(row.topic.encode()) + 10  # PUBLISH packet, QoS 1
            limit = min(self._max_packet or size, MAX_PAYLOAD_BYTES + 1024)
            if size > limit:
                logger.error(
                    "event %s: %d-byte packet over the %d-byte limit: set aside",
                    row.event_id,
                    size,
                    limit,
                )
                self.outbox.set_aside(row.id, f"packet of {size} bytes over the limit {limit}")
                continue
            info = self.client.publish(row.topic, row.payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                logger.warning(
                    "publish of event %s failed: %s", row.event_id, mqtt.error_string(info.rc)
                )
                return
            self._inflight[info.mid] = (row.id, time.monotonic())
            self.outbox.mark_attempt(row.id)

    def _run(self) -> None:
        next_status = 0.0
        seen_gen = 0
        while not self._stop.is_set():
            try:
                if self._downgrade.is_set():
                    self._downgrade.clear()
                    self._speak_311()
                self._drain_acks()
                if self._connected.is_set():
                    now = time.monotonic()
                    if seen_gen != self._conn_gen:  # paho resends in-flight rows itself
                        seen_gen = self._conn_gen
                        self._inflight = {m: (r, now) for m, (r, _) in self._inflight.items()}
                    if self._status_due.is_set() or now >= next_status:
                        self._status_due.clear()
                        self._send_status()
                        next_status = now + self._status_interval_s
                    self._fill_window()
            except Exception:
                logger.exception("sender loop error; continuing")
                self._stop.wait(1.0)
            self._wake.wait(0.2)
            self._wake.clear()
        self._drain_acks()


def _stamp() -> datetime:
    """Now, or the contract's floor while the clock is unset (a box without RTC before NTP):
    a status that cannot be built must not stop the box."""
    return max(utcnow(), TIME_FLOOR)
