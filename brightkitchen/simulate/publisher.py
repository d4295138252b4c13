"""Publish simulated messages over MQTT (QoS 1) with pacing, a rate limit and progress output.

paho queues every unacknowledged QoS 1 message in memory and slows down badly when
hundreds of thousands pile up, so messages go out in bounded windows: after each
window the publisher waits for the broker's PUBACK of the window's last message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bkcommon.errors import BrokerError, ConfigError
from bkcommon.settings import parse_mqtt_url
from bkcommon.timeutil import utcnow
from brightkitchen.simulate.fleet import Emission

logger = logging.getLogger(__name__)


@dataclass
class PublishStats:
    """Counts of what a publisher sent."""

    messages: int = 0
    readings: int = 0
    batches: int = 0
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    @property
    def elapsed_s(self) -> float:
        """Seconds from start to finish (or to now while running)."""
        end = self.finished_at if self.finished_at is not None else time.monotonic()
        return max(end - self.started_at, 1e-9)


def checked_broker_url(url: str) -> str:
    """``url`` (``--mqtt-url`` or BK_MQTT_URL) once it parses as a broker URL; else a ConfigError
    naming ``--mqtt-url``, before anything is generated or sent."""
    try:
        parse_mqtt_url(url)
    except ValueError as exc:
        raise ConfigError(f"--mqtt-url: {exc}") from exc
    return url


def connect(url: str, client_id: str = "", timeout_s: float = 10.0) -> mqtt.Client:
    """Connect a paho client (MQTT 3.1.1, works with every broker) and start its network loop."""
    ep = parse_mqtt_url(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    if ep.username:
        client.username_pw_set(ep.username, ep.password)
    if ep.tls:
        client.tls_set(ca_certs=ep.ca_file)  # BK_MQTT_CA_FILE, else the system's CAs
    connected = threading.Event()

    def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: object, _p: object) -> None:
        if not getattr(rc, "is_failure", False):
            connected.set()

    client.on_connect = on_connect
    try:
        client.connect(ep.host, ep.port, keepalive=60)
    except OSError as exc:
        raise BrokerError(f"cannot connect to MQTT broker {ep.host}:{ep.port}: {exc}") from exc
    client.loop_start()
    if not connected.wait(timeout_s):
        client.loop_stop()
        raise BrokerError(f"MQTT broker {ep.host}:{ep.port} did not accept the connection")
    return client


class Publisher:
    """Sends emissions in simulated-time order, paced by ``speed`` and capped at ``rate``."""

    def __init__(
        self,
        client: mqtt.Client,
        *,
        speed: float = 0.0,
        rate: float = 0.0,
        window: int = 1000,
        progress: Callable[[PublishStats], None] | None = None,
        progress_every_s: float = 5.0,
    ) -> None:
        self.client = client
        self.speed = speed  # simulated seconds per real second; 0 = as fast as possible
        self.rate = rate  # readings per second; 0 = unlimited
        self.window = max(1, window)
        self.progress = progress
        self.progress_every_s = progress_every_s
        self.stop_event = threading.Event()

    def run(self, emissions: Iterable[Emission]) -> PublishStats:
        """Publish everything (or until ``stop_event``); return the counts."""
        stats = PublishStats()
        t0 = time.monotonic()
        sim0: float | None = None
        last_progress = t0
        pending: mqtt.MQTTMessageInfo | None = None
        in_window = 0
        for em in emissions:
            if self.stop_event.is_set():
                break
            sim_s = em.sim_ts.timestamp()
            if sim0 is None:
                sim0 = sim_s
            self._pace(t0, sim_s - sim0, em, stats)
            info = self.client.publish(em.topic, em.payload, qos=1)
            if info.rc == mqtt.MQTT_ERR_NO_CONN:
                raise BrokerError("lost the MQTT connection while publishing")
            pending = info
            in_window += 1
            stats.messages += 1
            stats.readings += em.n_readings
            stats.batches += int(em.batch)
            if in_window >= self.window:
                self._wait(pending)
                in_window = 0
            now = time.monotonic()
            if self.progress and now - last_progress >= self.progress_every_s:
                last_progress = now
                self.progress(stats)
        if pending is not None:
            self._wait(pending)
        stats.finished_at = time.monotonic()
        return stats

    def _pace(self, t0: float, sim_elapsed_s: float, em: Emission, stats: PublishStats) -> None:
        """Sleep until the emission is due: simulated time, the clock and the rate cap."""
        while not self.stop_event.is_set():
            waits = [0.0]
            if self.speed > 0:
                waits.append(t0 + sim_elapsed_s / self.speed - time.monotonic())
            # Never publish a reading stamped in the future (ingest rejects clock faults).
            waits.append((em.sim_ts - utcnow()).total_seconds())
            if self.rate > 0:
                waits.append(t0 + (stats.readings + em.n_readings) / self.rate - time.monotonic())
            wait = max(waits)
            if wait <= 0:
                return
            self.stop_event.wait(min(wait, 0.5))

    def _wait(self, info: mqtt.MQTTMessageInfo) -> None:
        while not self.stop_event.is_set():
            try:
                info.wait_for_publish(timeout=1.0)
            except (RuntimeError, ValueError) as exc:
                raise BrokerError(f"publish failed: {exc}") from exc
            if info.is_published():
                return
            if not self.client.is_connected():
                logger.warning("waiting for the broker connection to come back")


def print_progress(stats: PublishStats) -> None:
    """Progress line for the CLI."""
    print(
        f"published {stats.messages} messages, {stats.readings} readings "
        f"({stats.readings / stats.elapsed_s:.0f} readings/s)",
        flush=True,
    )
