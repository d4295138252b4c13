"""The ingest worker: MQTT (QoS 1, persistent session, shared subscription) → PostgreSQL.

With a shared subscription one worker of the group also runs the gap guard
(:mod:`ingest.guard`), because Mosquitto does not restore shared subscriptions after a
restart; every worker tells the guard when its shared subscription is in place.

Threads: paho's network thread runs ``on_message``, which only validates and appends to a
bounded queue (blocking when it is full, so the socket is not read and memory stays
bounded); the calling thread runs the writer loop: it takes a batch, writes it in one
transaction, commits, and only then acknowledges the batch's MQTT messages. A crash before
the commit leaves the messages unacknowledged in the broker's session, which redelivers
them; ``ON CONFLICT DO NOTHING`` turns the redelivery into a no-op.

With ``BK_INGEST_WRITERS`` = N > 1 the queue is split into N lanes, each written by its
own thread on its own database connection, so one lane's Python runs while PostgreSQL
inserts another lane's batch. A sensor's readings (and a cabinet's plug samples) always
go to the same lane (by its id), so each sensor's readings reach the rules in the order
they came and no two transactions touch one sensor's rows; everything else (violations,
statuses, dead letters) goes to lane 0. Acknowledgements leave in the order the messages
arrived, each only once it and every message before it is committed.
"""

from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import FrameType
from typing import Any, Protocol

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from bkcommon.errors import DatabaseError
from bkcommon.settings import CommonSettings
from bkcommon.timeutil import utcnow
from bkcommon.topics import BROKER_DROPPED_TOPIC, ingest_subscriptions
from ingest.directory import SensorDirectory
from ingest.guard import GapGuard, worker_marker
from ingest.mqtt_fast import FastClient
from ingest.session import connect_session, granted, make_client, marker_topic
from ingest.settings import IngestSettings
from ingest.validate import AcceptedPower, AcceptedReadings, Validator
from ingest.writer import BatchWriter, Item, RuleHook, WriteResult

logger = logging.getLogger(__name__)

_TOPIC_CACHE_MAX = 200_000
_DROPPED_RAW = BROKER_DROPPED_TOPIC.encode()
DROPPED_SETTLE_S = 2.0
"""After the broker grants the ``$SYS`` subscription, its retained count arrives at once; until
this long has passed without one, the count is not reported as 0 (a 0 then the retained
count would read as messages dropped just now)."""

MAIN, GUARD = 0, 1
"""Which session a message came in on (and must be acknowledged on)."""


class SweepHook(RuleHook, Protocol):
    """A rule engine that also sweeps for silent sensors (the offline rule)."""

    def sweep(
        self, conn: psycopg.Connection[Any], now: datetime, listening_since: datetime | None = None
    ) -> int:
        """Raise alarms for sensors and cameras that stopped reporting (silence counted from
        ``listening_since`` at the earliest); return findings written."""
        ...


@dataclass(slots=True)
class Stats:
    """Counters of one worker (exported to Prometheus and logged)."""

    received: int = 0
    readings_received: int = 0
    inserted: int = 0
    duplicates: int = 0
    ignored: int = 0
    violations: int = 0
    statuses: int = 0
    findings: int = 0
    batches: int = 0
    flush_ms_total: float = 0.0
    db_errors: int = 0
    broker_disconnects: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    # Readings per committed batch as a Prometheus histogram: cumulative counts per bound.
    batch_bounds: tuple[int, ...] = (1, 10, 100, 1000, 5000, 10000, 50000)
    batch_counts: list[int] = field(default_factory=lambda: [0] * 8)
    batch_readings_total: int = 0
    last_commit_at: float = 0.0  # wall clock of the last commit (0: none yet)

    def add_batch_size(self, readings: int) -> None:
        """Account the size (in readings) of one committed batch in the histogram."""
        for i, bound in enumerate(self.batch_bounds):
            if readings <= bound:
                self.batch_counts[i] += 1
        self.batch_counts[-1] += 1  # +Inf
        self.batch_readings_total += readings
        self.last_commit_at = time.time()

    def add(self, res: WriteResult, flush_ms: float) -> None:
        """Account one committed batch."""
        self.inserted += res.inserted
        self.duplicates += res.duplicates
        self.ignored += res.ignored
        self.violations += res.violations
        self.statuses += res.statuses
        self.findings += res.findings
        self.dead.update(res.dead)
        self.batches += 1
        self.flush_ms_total += flush_ms


@dataclass(frozen=True, slots=True)
class _Pending:
    item: Item
    n_readings: int
    mid: int
    qos: int
    gen: int
    source: int = MAIN
    seq: int = 0  # receive order (acknowledgements leave in it)
    lane: int = 0


@dataclass(eq=False)
class _Lane:
    """One writer's share of the queue, its batch writer and database connection."""

    index: int
    writer: BatchWriter
    queue: deque[_Pending] = field(default_factory=deque)
    queued_readings: int = 0
    conn: psycopg.Connection[Any] | None = None

    def full(self, batch_max: int) -> bool:
        """A whole batch is waiting (write it now rather than at the interval)."""
        return self.queued_readings >= batch_max or len(self.queue) >= batch_max


def make_rule_engine(
    directory: SensorDirectory, box_offline_after_s: float | None = None
) -> SweepHook:
    """The cold-chain rule engine of ``ingest.rules`` (imported here: it is the heavy part)."""
    from ingest.rules.engine import RuleEngine

    if box_offline_after_s is None:
        return RuleEngine(directory)
    return RuleEngine(directory, box_offline_after_s)


DEAF_AFTER = timedelta(seconds=10)
"""Back-pressure this long means readings wait in the broker: the offline sweeps count
silence from its end (a moment's wait in a burst does not hold them back)."""


class IngestWorker:
    """One ingest worker; ``run()`` blocks until ``stop`` is set (usable in a thread)."""

    def __init__(
        self,
        common: CommonSettings,
        settings: IngestSettings,
        stop: threading.Event | None = None,
        rules: SweepHook | None = None,
    ) -> None:
        self.common = common
        self.settings = settings
        self.stop = stop or threading.Event()
        self.directory = SensorDirectory()
        self.rules: SweepHook = (
            rules
            if rules is not None
            else make_rule_engine(self.directory, settings.box_offline_after_s)
        )
        self.validator = Validator(
            self.directory,
            common.mqtt_prefix,
            settings.zigbee_base,
            max_future_skew=timedelta(seconds=settings.max_future_skew_s),
            backfill_grace=timedelta(days=settings.backfill_grace_days),
        )
        self.writer = BatchWriter(self.rules, settings.worker_id)
        self._lanes = [_Lane(0, self.writer)]
        for i in range(1, settings.writers):
            # The rule engine keeps no state between calls (it lives in the database), so
            # an injected one is shared; the default one is made per lane all the same.
            lane_rules = (
                rules
                if rules is not None
                else make_rule_engine(self.directory, settings.box_offline_after_s)
            )
            self._lanes.append(_Lane(i, BatchWriter(lane_rules, settings.worker_id)))
        self.stats = Stats()
        self._stats_lock = threading.Lock()
        self.connected = threading.Event()
        self._cond = threading.Condition()
        self._queued = 0  # messages in the lanes' queues
        self._queued_readings = 0
        self._pending_bytes = 0  # payload bytes queued or being written
        self._inflight = 0  # messages taken by the writer, not yet committed and acked
        self._ack_lock = threading.Lock()
        self._order_lock = threading.Lock()
        self._next_seq = 0  # receive order of the next message queued
        self._next_ack = 0  # the oldest message not yet acknowledged (or given up at stop)
        self._done: dict[int, _Pending] = {}  # committed, waiting for older ones to commit
        self._gen = 0  # bumped on every connect / disconnect: acks never cross connections
        self._client: mqtt.Client | None = None
        self._topics: dict[bytes, str] = {}  # topic bytes -> text (decoding is per message)
        self._subscribed_gen = -1  # the connection on which the subscriptions were granted
        # The broker's count of messages it dropped at queue limits (``BROKER_DROPPED_TOPIC``):
        # None until it says; kept across reconnections (the retained count comes again).
        self.broker_dropped: int | None = None
        self._dropped_mid: int | None = None  # SUBSCRIBE of that topic, on this connection
        self._dropped_granted_at: float | None = None
        # When this worker could hear the devices again (its subscriptions granted; None while
        # disconnected): the offline sweeps count silence from here at the earliest, so an
        # ingest or broker outage is not every sensor and camera of the region gone silent.
        self._listening_since: datetime | None = None
        # The last time the worker could not keep up (back-pressure held the socket, or a
        # write failed): what the sensors sent meanwhile waits in the broker, so their
        # silence is not counted before it either (a database outage is not every sensor
        # of the region gone silent).
        self._deaf_at: datetime | None = None
        self._held_since: datetime | None = None  # the network thread waits for room since
        self.guard: GapGuard | None = None
        if settings.group and settings.guard:
            self.guard = GapGuard(common, settings, self._submit_guarded)
        self._marker = marker_topic(common.mqtt_prefix, settings.group)

    # ---------------------------------------------------------------- MQTT side
    def _make_client(self) -> mqtt.Client:
        client = make_client(self.common, self.settings, self.settings.client_id, self._on_raw)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        connect_session(client, self.common, self.settings)
        return client

    def _subscriptions(self) -> list[str]:
        group = self.settings.group or None
        return ingest_subscriptions(self.common.mqtt_prefix, group, self.settings.zigbee_base)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            logger.error("broker refused the connection: %s", reason_code)
            return
        with self._ack_lock:
            self._gen += 1
        subs = self._subscriptions()
        client.subscribe([(t, 1) for t in subs])
        if self.settings.broker_drop_count:
            # apart, so that a broker without $SYS (or an ACL without it) refuses only this one
            self._dropped_mid = client.subscribe(BROKER_DROPPED_TOPIC, 0)[1]
        logger.info(
            "connected to the broker (session present: %s); subscribed to %s",
            flags.session_present,
            ", ".join(subs),
        )
        self.connected.set()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if mid == self._dropped_mid:
            self._on_dropped_subscribed(reason_codes)
            return
        if not granted(reason_codes):
            logger.error("broker refused subscriptions: %s", reason_codes)
            return
        with self._ack_lock:
            self._subscribed_gen = self._gen
            self._listening_since = utcnow()
        self._publish_marker(client)

    def _on_dropped_subscribed(self, reason_codes: list[ReasonCode]) -> None:
        if granted(reason_codes):
            if self._dropped_granted_at is None:
                self._dropped_granted_at = time.monotonic()
            return
        logger.warning(
            "the broker does not let ingest read %s (%s): messages it drops at its queue "
            "limits go unseen (no bk_ingest_broker_dropped_messages_total, no alert)",
            BROKER_DROPPED_TOPIC,
            reason_codes,
        )

    def _on_broker_dropped(self, payload: bytes) -> None:
        """The broker's dropped count; anything but a plain non-negative integer is ignored."""
        text = payload.strip()
        if not text.isdigit() or len(text) > 19:
            logger.debug("ignored %s payload %r", BROKER_DROPPED_TOPIC, payload[:40])
            return
        self.broker_dropped = int(text)

    def broker_dropped_reported(self) -> int | None:
        """The count to report: the broker's, or 0 once it has had time to send a retained
        one and has not (it had dropped nothing), else None (not known)."""
        if self.broker_dropped is not None:
            return self.broker_dropped
        since = self._dropped_granted_at
        if since is not None and time.monotonic() - since >= DROPPED_SETTLE_S:
            return 0
        return None

    def _publish_marker(self, client: mqtt.Client) -> None:
        """Tell the group's guard that this worker's shared subscription is in place (QoS 1:
        in order with the data in the guard's queue)."""
        if self.settings.group:
            client.publish(self._marker, worker_marker(self.settings.client_id), qos=1)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._ack_lock:
            self._gen += 1
            self._listening_since = None
        self.connected.clear()
        self.stats.broker_disconnects += 1
        if not self.stop.is_set():
            logger.warning("disconnected from the broker (%s); reconnecting", reason_code)

    def _on_raw(
        self, topic_raw: bytes, payload: bytes, mid: int, qos: int, retained: bool = False
    ) -> None:
        if topic_raw == _DROPPED_RAW:  # the broker's own (QoS 0: nothing to acknowledge)
            self._on_broker_dropped(payload)
            return
        self._enqueue(topic_raw, payload, mid, qos, gen=self._gen, source=MAIN, retained=retained)

    def _submit_guarded(  # noqa: PLR0917 - the guard's Submit callback shape
        self, topic_raw: bytes, payload: bytes, mid: int, qos: int, gen: int, retained: bool = False
    ) -> None:
        self._enqueue(topic_raw, payload, mid, qos, gen=gen, source=GUARD, retained=retained)

    def _enqueue(
        self,
        topic_raw: bytes,
        payload: bytes,
        mid: int,
        qos: int,
        *,
        gen: int,
        source: int,
        retained: bool = False,
    ) -> None:
        now = utcnow()
        topic = self._topics.get(topic_raw)
        if topic is None:
            topic = topic_raw.decode("utf-8", errors="replace")
            if len(self._topics) >= _TOPIC_CACHE_MAX:
                self._topics.clear()
            self._topics[topic_raw] = topic
        outcome = self.validator(topic, payload, now, retained)
        lanes = len(self._lanes)
        lane = 0
        if lanes > 1:
            sensor = getattr(outcome, "sensor_id", None)  # readings or a cabinet's samples
            if sensor is not None:
                lane = hash(sensor) % lanes
        n = (
            len(outcome.readings)
            if isinstance(outcome, AcceptedReadings)
            else len(outcome.samples)
            if isinstance(outcome, AcceptedPower)
            else 0
        )
        item = Item(topic, payload, now, outcome)
        limit = self.settings.max_pending
        target = self._lanes[lane]
        with self._cond:
            # Back-pressure: while the database is behind, do not return to the socket.
            # Readings count too: a few gateway batches hold as many readings as thousands
            # of single messages, and memory follows readings.
            # Bytes too: a violation carries its evidence JPEG inline (up to 256 KiB), and
            # 1,500 of them held 800 MB while the database was slow, long before the count.
            while (
                self._queued + self._inflight >= limit
                or (self._queued_readings >= limit and self._queued)
                or (
                    self._pending_bytes >= self.settings.max_pending_bytes
                    and self._queued + self._inflight
                )
            ):
                if self.stop.is_set():
                    return  # not acked: the broker redelivers it after restart
                if self._held_since is None:
                    self._held_since = utcnow()
                self._cond.wait(0.5)
            if self._held_since is not None:
                now = utcnow()
                # a moment's wait in a burst is no gap; one as long as DEAF_AFTER is
                if now - self._held_since >= DEAF_AFTER:
                    self._deaf_at = now
                self._held_since = None
            p = _Pending(item, n, mid, qos, gen, source, self._next_seq, lane)
            self._next_seq += 1
            target.queue.append(p)
            target.queued_readings += n
            self._pending_bytes += len(payload)
            self._queued += 1
            self._queued_readings += n
            self.stats.received += 1
            self.stats.readings_received += n
            if target.full(self.settings.batch_max):
                self._cond.notify_all()

    @property
    def _queue(self) -> list[_Pending]:
        """Every queued message, lane by lane (for tests and diagnostics)."""
        with self._cond:
            return [p for lane in self._lanes for p in lane.queue]

    def _committed(self, batch: list[_Pending]) -> None:
        """Acknowledge what ``batch``'s commit makes acknowledgeable: every message whose
        predecessors (in receive order, over all lanes) are committed too, in that order."""
        with self._order_lock:
            done = self._done
            for p in batch:
                done[p.seq] = p
            ready: list[_Pending] = []
            nxt = self._next_ack
            while nxt in done:
                ready.append(done.pop(nxt))
                nxt += 1
            self._next_ack = nxt
            if ready:
                self._ack(ready)  # under the lock: two writers' acks never interleave

    def _ack(self, batch: list[_Pending]) -> None:
        if self.guard is not None:
            guarded = [(p.mid, p.qos, p.gen) for p in batch if p.source == GUARD]
            if guarded:
                self.guard.ack(guarded)
                batch = [p for p in batch if p.source == MAIN]
        client = self._client
        if client is None:
            return
        with self._ack_lock:
            gen = self._gen
            if isinstance(client, FastClient):
                client.ack_many([p.mid for p in batch if p.qos == 1 and p.gen == gen])
                batch = [p for p in batch if p.qos > 1]
            for p in batch:
                if p.qos > 0 and p.gen == gen:
                    client.ack(p.mid, p.qos)

    # ---------------------------------------------------------------- database side
    def _backoff_sleep(self, attempt: int) -> None:
        delay = min(self.settings.db_backoff_max_s, 0.25 * 2**attempt)
        self.stop.wait(delay)

    @property
    def _conn(self) -> psycopg.Connection[Any] | None:
        return self._lanes[0].conn

    def _connection(self, lane: _Lane | None = None) -> psycopg.Connection[Any]:
        """Return a live connection of ``lane`` (default: lane 0, which also runs the
        periodic work), reconnecting with exponential backoff (until stop)."""
        lane = lane or self._lanes[0]
        if lane.conn is not None and not lane.conn.closed and not lane.conn.broken:
            return lane.conn
        self._close_db(lane)
        attempt = 0
        url = self.common.database_url.get_secret_value()
        while True:
            try:
                conn = psycopg.connect(url, connect_timeout=10, application_name="bk-ingest")
                lane.writer.prepare(conn)
            except psycopg.OperationalError as exc:
                self.stats.db_errors += 1
                if self.stop.is_set():
                    raise DatabaseError(f"database unavailable at shutdown: {exc}") from exc
                logger.warning("database unavailable (%s); retry %d", exc, attempt + 1)
                self._backoff_sleep(attempt)
                attempt += 1
            else:
                lane.conn = conn
                if attempt:
                    logger.info("database connection restored")
                return conn

    def _close_db(self, lane: _Lane | None = None) -> None:
        """Close ``lane``'s connection (None: every lane's, once no writer runs)."""
        for each in self._lanes if lane is None else [lane]:
            if each.conn is not None:
                try:
                    each.conn.close()
                except psycopg.Error:
                    logger.debug("closing a broken connection failed", exc_info=True)
                each.conn = None

    def _commit_batch(self, lane: _Lane, batch: list[_Pending], final: bool = False) -> bool:
        """Write ``batch`` until it commits (retrying with backoff); False if stopped first."""
        items = [p.item for p in batch]
        attempt = 0
        while True:
            try:
                conn = self._connection(lane)
                t0 = time.perf_counter()
                res = lane.writer.write(conn, items)
            except psycopg.Error as exc:  # the writer raises only what is not the content's
                self._deaf_at = utcnow()
                with self._stats_lock:
                    self.stats.db_errors += 1
                conn_bad = lane.conn is None or lane.conn.closed or lane.conn.broken
                logger.warning(
                    "batch of %d not written (%s: %s); retrying",
                    len(items),
                    type(exc).__name__,
                    exc,
                )
                if conn_bad:
                    self._close_db(lane)
                else:
                    try:
                        lane.conn.rollback()  # type: ignore[union-attr]
                    except psycopg.Error:
                        self._close_db(lane)
            except DatabaseError:
                return False
            else:
                with self._stats_lock:
                    self.stats.add(res, (time.perf_counter() - t0) * 1000)
                    self.stats.add_batch_size(sum(p.n_readings for p in batch))
                return True
            if self.stop.is_set() and (final or attempt > 3):
                return False
            self._backoff_sleep(attempt)
            attempt += 1

    def _take_batch(self, lane: _Lane) -> list[_Pending]:
        batch: list[_Pending] = []
        n = 0
        queue = lane.queue
        batch_max = self.settings.batch_max
        with self._cond:
            while queue and n < batch_max and len(batch) < batch_max:
                p = queue.popleft()
                batch.append(p)
                n += p.n_readings
            lane.queued_readings -= n
            self._queued_readings -= n
            self._queued -= len(batch)
            self._inflight += len(batch)
        return batch

    def _release(self, batch: list[_Pending]) -> None:
        with self._cond:
            self._inflight -= len(batch)
            self._pending_bytes -= sum(len(p.item.raw) for p in batch)
            self._cond.notify_all()

    def flush_once(self, final: bool = False) -> int:
        """Write, commit and acknowledge one batch of each lane in this thread; return how
        many messages they held."""
        return sum(self._flush_lane(lane, final) for lane in self._lanes)

    def _flush_lane(self, lane: _Lane, final: bool = False) -> int:
        """Write, commit and acknowledge one batch of ``lane``; return its messages."""
        batch = self._take_batch(lane)
        if not batch:
            return 0
        try:
            if self._commit_batch(lane, batch, final):
                self._committed(batch)
        finally:
            self._release(batch)
        return len(batch)

    def _wait_for_batch(self, lane: _Lane, until: float) -> None:
        """Wait until ``lane`` holds a whole batch, stop is set or ``until`` (monotonic)."""
        batch_max = self.settings.batch_max
        with self._cond:
            self._cond.wait_for(
                lambda: self.stop.is_set() or lane.full(batch_max),
                timeout=max(0.0, until - time.monotonic()),
            )

    def _lane_loop(self, lane: _Lane) -> None:
        """The loop of a writer thread of its own (lanes 1 and up)."""
        interval = self.settings.flush_interval_ms / 1000
        last_flush = time.monotonic()
        try:
            while not self.stop.is_set():
                self._wait_for_batch(lane, last_flush + interval)
                last_flush = time.monotonic()
                self._flush_lane(lane)
        except Exception:
            logger.exception("writer %d failed; stopping the worker", lane.index)
            self.stop.set()

    # ---------------------------------------------------------------- periodic work
    def _periodic(self, last: dict[str, float]) -> None:
        mono = time.monotonic()
        s = self.settings
        if self.guard is not None:
            self.guard.flush_acks()
            self.guard.tick()
        client = self._client
        if (
            client is not None
            and mono - last["marker"] >= s.marker_interval_s
            and self.connected.is_set()
            and self._subscribed_gen == self._gen
        ):
            last["marker"] = mono
            self._publish_marker(client)
        try:
            if mono - last["directory"] >= s.directory_refresh_s:
                last["directory"] = mono
                conn = self._connection()
                self.directory.refresh(conn)
                conn.commit()
            listening_since = self._listening_since
            held_since, deaf_at = self._held_since, self._deaf_at
            if held_since is not None and utcnow() - held_since >= DEAF_AFTER:
                deaf_at = utcnow()
            if listening_since is not None and deaf_at is not None:
                listening_since = max(listening_since, deaf_at)
            if mono - last["sweep"] >= s.sweep_interval_s and listening_since is not None:
                last["sweep"] = mono
                conn = self._connection()
                with conn.transaction():
                    n = self.rules.sweep(conn, utcnow(), listening_since)
                    if n:
                        conn.execute("NOTIFY bk_findings")
                with self._stats_lock:
                    self.stats.findings += n
        except (psycopg.Error, DatabaseError) as exc:
            with self._stats_lock:
                self.stats.db_errors += 1
            logger.warning("periodic task failed (%s); will retry", exc)
            if self._conn is not None and (self._conn.broken or self._conn.closed):
                self._close_db(self._lanes[0])
            elif self._conn is not None:
                self._conn.rollback()
        if mono - last["stats"] >= s.stats_log_s:
            last["stats"] = mono
            self.log_stats()

    def log_stats(self) -> None:
        """Log the counters in one line."""
        st = self.stats
        avg = st.flush_ms_total / st.batches if st.batches else 0.0
        logger.info(
            "received=%d readings=%d inserted=%d duplicates=%d dead=%s ignored=%d "
            "violations=%d findings=%d batches=%d avg_flush_ms=%.1f pending=%d",
            st.received,
            st.readings_received,
            st.inserted,
            st.duplicates,
            dict(st.dead),
            st.ignored,
            st.violations,
            st.findings,
            st.batches,
            avg,
            self.pending(),
        )

    def lag_seconds(self) -> float:
        """Age of the oldest received message not yet taken by the writer (0 when none)."""
        with self._cond:
            heads = [lane.queue[0].item.received_at for lane in self._lanes if lane.queue]
        if not heads:
            return 0.0
        return max(0.0, (utcnow() - min(heads)).total_seconds())

    def pending(self) -> int:
        """Messages received and not yet committed."""
        with self._cond:
            return self._queued + self._inflight

    # ---------------------------------------------------------------- main loop
    def run(self) -> None:
        """Connect, consume until ``stop`` is set, then flush, acknowledge and disconnect."""
        conn = self._connection()
        n = self.directory.refresh(conn)
        conn.commit()
        logger.info(
            "ingest worker %s starting: %d sensors, group %r, protocol %s",
            self.settings.client_id,
            n,
            self.settings.group,
            self.settings.mqtt_protocol,
        )
        self._client = self._make_client()
        self._client.loop_start()
        now = time.monotonic()
        last = {
            "directory": now,
            "sweep": now - self.settings.sweep_interval_s,
            "stats": now,
            "marker": now,
        }
        if self.guard is not None:
            self.guard.tick()
        interval = self.settings.flush_interval_ms / 1000
        last_flush = time.monotonic()
        lane0 = self._lanes[0]
        threads = [
            threading.Thread(target=self._lane_loop, args=(lane,), name=f"bk-writer-{lane.index}")
            for lane in self._lanes[1:]
        ]
        for t in threads:
            t.start()
        try:
            while not self.stop.is_set():
                # One flush per interval, sooner only when a full batch is waiting: big
                # batches amortise the transaction, the rollups and the rule engine.
                self._wait_for_batch(lane0, last_flush + interval)
                last_flush = time.monotonic()
                self._flush_lane(lane0)
                self._periodic(last)
        finally:
            self.stop.set()
            with self._cond:
                self._cond.notify_all()
            for t in threads:
                t.join()
            self._shutdown()

    def _leave_group(self) -> None:
        """On a clean stop, unsubscribe the shared subscriptions (the session stays).

        Mosquitto queues shared messages to offline members too: a worker that does not
        come back, or comes back under another client id, would keep receiving its share
        of the stream into a session nobody reads. Only with the guard, whose plain
        session keeps queueing once the last worker of the group has left.
        """
        client = self._client
        if client is None or not self.settings.group or not self.settings.guard:
            return
        if not self.connected.is_set():
            return
        left = threading.Event()
        client.on_unsubscribe = lambda *_args: left.set()
        client.unsubscribe(self._subscriptions())
        if not left.wait(5):
            logger.warning("no UNSUBACK within 5 s; stopping anyway")

    def _shutdown(self) -> None:
        self.stop.set()
        with self._cond:
            self._cond.notify_all()
        try:
            if self.guard is not None:
                # Before leaving the group: an idle guard acknowledges without writing
                # ("the group has it"), but once the last member has unsubscribed nobody
                # has it. Disconnected, the guard's session queues what comes meanwhile and
                # the next guard writes it (gap mode after every connection).
                self.guard.close()
            self._leave_group()  # then: what was already routed to us is flushed below
            while self.flush_once(final=True):
                pass
        finally:
            if self.guard is not None:
                self.guard.close()
            if self._client is not None:
                self._client.disconnect()
                self._client.loop_stop()
            self._close_db()
            self.log_stats()
            logger.info("ingest worker %s stopped", self.settings.client_id)


def _serve_metrics(worker: IngestWorker, port: int, addr: str = "0.0.0.0") -> Any:  # noqa: S104
    """Expose the worker's counters on ``port`` for Prometheus; return the HTTP server."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    class _Collector:
        def collect(self) -> Iterator[Any]:
            st = worker.stats
            for name, value, doc in (
                ("received", st.received, "MQTT messages received"),
                ("readings_received", st.readings_received, "readings in valid messages"),
                ("inserted", st.inserted, "readings inserted"),
                ("duplicates", st.duplicates, "redelivered readings ignored"),
                ("ignored", st.ignored, "messages ignored (unmapped Zigbee devices)"),
                ("violations", st.violations, "new violations stored"),
                ("findings", st.findings, "findings written"),
                ("batches", st.batches, "batches committed"),
                ("db_errors", st.db_errors, "database errors (retried)"),
                ("broker_disconnects", st.broker_disconnects, "broker disconnects"),
            ):
                yield CounterMetricFamily(f"bk_ingest_{name}", doc, value=value)
            dead = CounterMetricFamily("bk_ingest_dead_letters", "dead letters", labels=["reason"])
            for code, value in sorted(st.dead.items()):
                dead.add_metric([code], value)
            yield dead
            yield CounterMetricFamily(
                "bk_ingest_flush_ms", "milliseconds spent writing batches", value=st.flush_ms_total
            )
            yield GaugeMetricFamily(
                "bk_ingest_pending", "messages not yet committed", value=worker.pending()
            )
            yield GaugeMetricFamily(
                "bk_ingest_lag_seconds",
                "age of the oldest received message waiting for the writer",
                value=worker.lag_seconds(),
            )
            guard = worker.guard
            if guard is not None:
                yield GaugeMetricFamily(
                    "bk_ingest_guard_gap",
                    "1 while this worker's gap guard writes what it receives, 0 when idle or "
                    "not the group's guard",
                    value=1.0 if guard.active and guard.gap else 0.0,
                )
                yield CounterMetricFamily(
                    "bk_ingest_guard_gap_messages",
                    "messages the gap guard handed to the writer",
                    value=guard.written_in_gap,
                )
            dropped = worker.broker_dropped_reported()
            if dropped is not None:
                yield CounterMetricFamily(
                    "bk_ingest_broker_dropped_messages",
                    "messages the MQTT broker dropped at a client's queue or in-flight limit "
                    "since the broker started (its $SYS count): each one lost",
                    value=dropped,
                )
            yield GaugeMetricFamily(
                "bk_ingest_last_commit_timestamp_seconds",
                "Unix time of the last committed batch (0: none since start)",
                value=st.last_commit_at,
            )
            buckets = [
                (str(float(bound)), count)
                for bound, count in zip(st.batch_bounds, st.batch_counts, strict=False)
            ]
            buckets.append(("+Inf", st.batch_counts[-1]))
            yield HistogramMetricFamily(
                "bk_ingest_batch_readings",
                "readings per committed batch",
                buckets=buckets,
                sum_value=st.batch_readings_total,
            )

    registry = CollectorRegistry()
    registry.register(_Collector())
    server, _thread = start_http_server(port, addr=addr, registry=registry)
    logger.info("metrics on :%d/metrics", port)
    return server


def tune_gc() -> None:
    """Make the cyclic garbage collector run less often in a worker process.

    Validation allocates a few objects per reading and the queue keeps up to
    ``max_pending`` readings' objects alive; with the default first threshold (700
    allocations) the collector ran every ~100 readings and walked that live queue each
    time: about half of the validation CPU on gateway batches (``writer_bench``: 4.3 µs
    a reading before, 2.1 µs after). The worker makes almost no reference cycles, so
    collecting every 10,000 allocations loses nothing; ``freeze`` takes the modules and
    schemas loaded at start-up out of every later collection.
    """
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def run_worker(
    common: CommonSettings, settings: IngestSettings, stop: threading.Event | None = None
) -> None:
    """Entry point: run one ingest worker until ``stop`` is set or SIGTERM / SIGINT arrives."""
    stop = stop or threading.Event()
    tune_gc()
    if threading.current_thread() is threading.main_thread():

        def _on_signal(signum: int, frame: FrameType | None) -> None:
            logger.info("signal %d: stopping after the current batch", signum)
            stop.set()

        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
    worker = IngestWorker(common, settings, stop)
    if settings.metrics_port:
        _serve_metrics(worker, settings.metrics_port)
    worker.run()
