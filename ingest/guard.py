"""The gap guard: no reading is lost while a restarted Mosquitto has no shared subscription.

Mosquitto (2.0) persists sessions, their queues and plain subscriptions across a restart,
but not shared subscriptions (``$share/<group>/...``; ``persist__subs_save`` walks only
plain subscribers). After a restart, until a worker of the group has reconnected and
subscribed again, a reading the broker acknowledges to its sensor matches no subscriber
and is dropped: about 7 % of readings were lost that way across a restart.

One worker of each group (the one holding a PostgreSQL advisory lock) also runs the
guard: a second persistent session, ``bk-ingest-guard-<group>``, with *plain*
subscriptions to the same topics, which Mosquitto does restore. It sees every message.
Normally it acknowledges each at once, without writing it: the group writes it. After
each (re)connection it is in *gap mode* and hands every message to the worker's writer
(written idempotently, acknowledged after commit) until it has proof that the group is
subscribed again in this broker incarnation:

1. on connecting it subscribes, then publishes a *probe* with a fresh nonce to the
   marker topic (QoS 1, to itself);
2. every worker publishes a *marker* (QoS 1) to the same topic right after its shared
   subscription is granted, and again every few seconds while connected;
3. a worker marker received after the guard's own probe was routed after the guard's
   connection and after that worker's SUBSCRIBE (paho sends the SUBSCRIBE of
   ``on_connect`` before it re-sends unacknowledged publishes), so from then on the
   group receives every message. The guard's queue is one FIFO for QoS 1 messages, so
   everything it received before the marker, it wrote.

While the guard's own process is down, its session keeps queueing (up to
``max_queued_messages``), so a gap in that time is written when it comes back.
Writing a message twice is harmless: readings, violations and statuses are idempotent, keyed
by their own times and ids. Zigbee2MQTT states are the exception: they carry no time and are
stamped on arrival, so one that both the guard and the group write in the seconds before the
marker closes the gap is stored twice, a few milliseconds apart (the rollup counts it twice;
the rules see the same temperature again). Dropping them from the guard instead would lose
those that arrive during a real gap, so the duplicates stay.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from bkcommon.settings import CommonSettings
from bkcommon.topics import ingest_subscriptions
from ingest.mqtt_fast import FastClient
from ingest.session import connect_session, granted, make_client, marker_topic
from ingest.settings import IngestSettings

logger = logging.getLogger(__name__)

GUARD_LOCK_CLASS = 0x626B_6764
"""First key of the advisory lock that elects one guard per group (``'bkgd'``)."""

WORKER_MARKER = b"worker "
PROBE_MARKER = b"probe "

ACK_BATCH = 512
"""Idle-mode acknowledgements are sent in batches of this many (one write, not one each),
and whatever is left on each pass of the worker's loop (:meth:`GapGuard.flush_acks`)."""

STUCK_GAP_S = 60.0
"""After this long in gap mode the guard warns: markers are not getting through (an ACL
that does not let the ingest account publish and read the marker topic?). Nothing is lost
meanwhile, but every message is written twice."""

Submit = Callable[[bytes, bytes, int, int, int, bool], None]
"""``submit(topic, payload, mid, qos, gen, retained)``: hand a message to the worker's writer."""


def guard_client_id(settings: IngestSettings) -> str:
    """The guard's client id: one per group, the same on every host, so whichever worker
    runs the guard finds the session (and its queue) the previous guard left."""
    return (settings.guard_client_id or f"bk-ingest-guard-{settings.group}")[:64]


def worker_marker(client_id: str) -> bytes:
    """Payload of a worker's marker."""
    return WORKER_MARKER + client_id.encode()


class GapGuard:
    """The guard session of one group; :meth:`tick` elects it, :meth:`close` ends it."""

    def __init__(self, common: CommonSettings, settings: IngestSettings, submit: Submit) -> None:
        self.common = common
        self.settings = settings
        self.submit = submit
        self.client_id = guard_client_id(settings)
        self.marker = marker_topic(common.mqtt_prefix, settings.group)
        self._marker_raw = self.marker.encode()
        self._filters = [
            *ingest_subscriptions(common.mqtt_prefix, None, settings.zigbee_base),
            self.marker,
        ]
        self.client: mqtt.Client | None = None
        self.gen = 0  # bumped on every connect / disconnect: acks never cross connections
        self.gap = True
        self.gaps_closed = 0
        self.written_in_gap = 0
        self._probe = b""
        self._probe_seen = False
        self._ack_lock = threading.Lock()
        self._db: psycopg.Connection[Any] | None = None
        self._next_check = 0.0
        self._connected_at: float | None = None
        self._warned = False
        self._idle_acks: list[tuple[int, int]] = []  # (mid, gen) of QoS 1 messages the group has

    # ------------------------------------------------------------------ election
    @property
    def active(self) -> bool:
        """True while this worker runs the group's guard."""
        return self.client is not None

    def tick(self) -> None:
        """Run the guard while this worker holds the group's lock (try for it now and then);
        stop it when the lock's connection is gone (another worker may take over)."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.settings.guard_check_s
        if self.client is not None:
            if not self._lock_alive():
                logger.warning("guard lock lost with its database connection; guard stopped")
                self.close()
            else:
                self._warn_if_stuck(now)
            return
        if self._take_lock():
            self._start()

    def _warn_if_stuck(self, now: float) -> None:
        since = self._connected_at
        if self.gap and since is not None and now - since > STUCK_GAP_S and not self._warned:
            self._warned = True
            logger.warning(
                "guard still in gap mode %.0f s after connecting: no worker marker on %s "
                "(may the ingest account publish and read it?); every message is written twice",
                now - since,
                self.marker,
            )

    def _take_lock(self) -> bool:
        try:
            if self._db is None or self._db.closed or self._db.broken:
                self._db = psycopg.connect(
                    self.common.database_url.get_secret_value(),
                    autocommit=True,
                    connect_timeout=5,
                    application_name="bk-ingest-guard",
                )
            row = self._db.execute(
                "SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                (GUARD_LOCK_CLASS, self.settings.group),
            ).fetchone()
        except psycopg.Error as exc:
            logger.debug("guard lock not taken: %s", exc)
            self._close_db()
            return False
        return bool(row and row[0])

    def _lock_alive(self) -> bool:
        if self._db is None:
            return False
        try:
            self._db.execute("SELECT 1")
        except psycopg.Error:
            self._close_db()
            return False
        return True

    def _close_db(self) -> None:
        if self._db is not None:
            try:
                self._db.close()  # a session-level advisory lock ends with its session
            except psycopg.Error:
                logger.debug("closing the guard lock connection failed", exc_info=True)
            self._db = None

    # ------------------------------------------------------------------ session
    def _start(self) -> None:
        client = make_client(self.common, self.settings, self.client_id, self._on_raw)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        connect_session(client, self.common, self.settings)
        self.client = client
        client.loop_start()
        logger.info(
            "this worker runs the gap guard %s of group %r", self.client_id, self.settings.group
        )

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            logger.error("broker refused the guard's connection: %s", reason_code)
            return
        with self._ack_lock:
            self.gen += 1
            self.gap = True
            self._probe = PROBE_MARKER + uuid.uuid4().hex.encode()
            self._probe_seen = False
            self._connected_at = time.monotonic()
            self._warned = False
        client.subscribe([(t, 1) for t in self._filters])
        logger.info("guard connected (session present: %s): in gap mode", flags.session_present)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if granted(reason_codes):
            client.publish(self.marker, self._probe, qos=1)
        else:
            logger.error("broker refused the guard's subscriptions: %s", reason_codes)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._ack_lock:
            self.gen += 1

    def _on_raw(
        self, topic: bytes, payload: bytes, mid: int, qos: int, retained: bool = False
    ) -> None:
        client = self.client
        if client is None:
            return
        if topic == self._marker_raw:
            self._on_marker(payload)
            if qos:
                client.ack(mid, qos)
        elif self.gap:
            self.written_in_gap += 1
            self.submit(topic, payload, mid, qos, self.gen, retained)
        elif qos == 1:  # the group has it
            with self._ack_lock:
                self._idle_acks.append((mid, self.gen))
                full = len(self._idle_acks) >= ACK_BATCH
            if full:
                self.flush_acks()
        elif qos:
            client.ack(mid, qos)

    def _on_marker(self, payload: bytes) -> None:
        if payload == self._probe:
            self._probe_seen = True
        elif payload.startswith(WORKER_MARKER) and self._probe_seen and self.gap:
            self.gap = False
            self.gaps_closed += 1
            logger.info(
                "group %r subscribed again (%s); guard idle after writing %d messages",
                self.settings.group,
                payload[len(WORKER_MARKER) :].decode(errors="replace"),
                self.written_in_gap,
            )

    def flush_acks(self) -> None:
        """Send the idle-mode acknowledgements gathered so far (of the current connection)."""
        client = self.client
        if client is None:
            return
        with self._ack_lock:
            mids = [mid for mid, gen in self._idle_acks if gen == self.gen]
            self._idle_acks = []
            if not mids:
                return
            if isinstance(client, FastClient):
                client.ack_many(mids)
            else:
                for mid in mids:
                    client.ack(mid, 1)

    def ack(self, mids: list[tuple[int, int, int]]) -> None:
        """Acknowledge committed gap messages ``(mid, qos, gen)`` of the current connection."""
        client = self.client
        if client is None:
            return
        with self._ack_lock:
            live = [(mid, qos) for mid, qos, gen in mids if gen == self.gen and qos > 0]
            if isinstance(client, FastClient):
                client.ack_many([mid for mid, qos in live if qos == 1])
                live = [(mid, qos) for mid, qos in live if qos > 1]
            for mid, qos in live:
                client.ack(mid, qos)

    def close(self) -> None:
        """Disconnect (the session and its plain subscriptions stay on the broker) and
        release the lock."""
        self.flush_acks()
        client, self.client = self.client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self._close_db()
