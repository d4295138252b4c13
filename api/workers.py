"""Background workers: the ticket engine and the notification dispatcher, woken by NOTIFY.

Each worker is a thread with two connections: one that only LISTENs, one that works.
It wakes the moment ingest (``bk_findings``) or the engine (``bk_notifications``) sends a
NOTIFY, and also polls every ``poll_interval_s`` because a NOTIFY sent while the worker
was reconnecting is lost and retries fall due with no NOTIFY at all. Several processes
can run the same workers: claims use ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from api.metrics import SLA_BREACHES, TICKETS_OPENED, WORKER_ERRORS
from api.services.duty_deadlines import DUTY_CHANNEL, DutySettings, check_deadlines
from api.services.escalation import ESCALATION_CHANNEL, run_escalation
from api.services.evidence_store import offload_blobs, s3_store
from api.services.incident_traces import INTERVAL_S as TRACE_INTERVAL_S
from api.services.incident_traces import keep_incident_traces
from api.services.notify.base import Channel
from api.services.notify.channels import build_channels, close_channels
from api.services.notify.dispatcher import dispatch_due
from api.services.risk import RISK_CHANNEL, RiskSettings, risk_step
from api.services.sample_deadlines import check_sample_deadlines
from api.services.tickets import FINDINGS_CHANNEL, NOTIFICATIONS_CHANNEL, process_findings
from api.settings import ApiSettings
from bkcommon.timeutil import utcnow

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]
Step = Callable[[Conn], int]

_WAKE_CHECK_S = 0.5  # how often a waiting worker checks its stop flag
_RECONNECT_MAX_S = 30.0


class ListenWorker(threading.Thread):
    """Drains ``step`` whenever a NOTIFY arrives on ``channels`` or a poll falls due."""

    def __init__(
        self,
        *,
        name: str,
        database_url: str,
        channels: tuple[str, ...],
        step: Step,
        poll_interval_s: float,
        stop_event: threading.Event,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._url = database_url
        self._channels = channels
        self._step = step
        self._poll_s = poll_interval_s
        self._stop_event = stop_event
        self.rounds = 0
        self.connected = threading.Event()

    def run(self) -> None:
        """Loop over sessions; after an error, back off (1 s doubling to 30 s) and reconnect."""
        delay = 1.0
        while not self._stop_event.is_set():
            try:
                self._session()
                delay = 1.0
            except Exception:
                WORKER_ERRORS.labels(self.name).inc()
                self.connected.clear()
                logger.exception(
                    "worker %s failed; reconnecting in %.0f s",
                    self.name,
                    delay,
                    extra={"worker": self.name},
                )
                self._stop_event.wait(delay + random.uniform(0, delay / 4))
                delay = min(_RECONNECT_MAX_S, delay * 2)

    def _session(self) -> None:
        """One connected session: LISTEN, drain, then wait for NOTIFY or the poll timer."""
        with (
            psycopg.connect(self._url, autocommit=True, connect_timeout=10) as listen,
            psycopg.connect(self._url, autocommit=True, connect_timeout=10) as work,
        ):
            for ch in self._channels:
                listen.execute(f"LISTEN {ch}")  # channel names are our constants
            self.connected.set()
            logger.info("worker %s listening on %s", self.name, ", ".join(self._channels))
            self._drain(work)
            next_poll = time.monotonic() + self._poll_s
            while not self._stop_event.is_set():
                wait = max(0.0, min(_WAKE_CHECK_S, next_poll - time.monotonic()))
                woke = False
                for _ in listen.notifies(timeout=wait, stop_after=1):
                    woke = True
                if woke or time.monotonic() >= next_poll:
                    self._drain(work)
                    next_poll = time.monotonic() + self._poll_s

    def _drain(self, work: Conn) -> None:
        """Run the step until it finds nothing more to do (or we are asked to stop)."""
        while not self._stop_event.is_set():
            self.rounds += 1
            if self._step(work) == 0:
                return


def _duty_step(conn: psycopg.Connection[Any], settings: DutySettings) -> int:
    """One look at the duties' deadlines: daily checks, then the meals' food samples.

    One worker for both: the same schedule (``BK_DUTY_INTERVAL_S``), the same wake-up
    channel, and neither is urgent to the minute.
    """
    now = utcnow()
    return check_deadlines(conn, now=now, settings=settings) + check_sample_deadlines(
        conn, now=now, settings=settings
    )


class Workers:
    """The ticket engine and the dispatcher of one process; ``start`` / ``stop`` them together."""

    def __init__(self, *, database_url: str, settings: ApiSettings) -> None:
        self._stop = threading.Event()
        for tier in ("1", "2", "3"):  # series from the start: 0 until the first one, not absent
            TICKETS_OPENED.labels(tier)
            SLA_BREACHES.labels(tier)
        self._channels: dict[str, Channel] = build_channels(settings)
        channels = self._channels
        self.engines = [
            ListenWorker(
                name=f"ticket-engine-{i}",
                database_url=database_url,
                channels=(FINDINGS_CHANNEL,),
                step=lambda c: process_findings(c, now=utcnow(), settings=settings),
                poll_interval_s=settings.poll_interval_s,
                stop_event=self._stop,
            )
            for i in range(settings.engine_threads)
        ]
        self.engine = self.engines[0]
        self.dispatcher = ListenWorker(
            name="dispatcher",
            database_url=database_url,
            channels=(NOTIFICATIONS_CHANNEL,),
            step=lambda c: dispatch_due(c, now=utcnow(), settings=settings, channels=channels),
            # Retries fall due without a NOTIFY: poll at least as often as the first backoff.
            poll_interval_s=min(settings.poll_interval_s, settings.backoff_base_s),
            stop_event=self._stop,
        )
        risk = RiskSettings()
        self.risk = ListenWorker(  # daily history points and the scores now, when due
            name="risk-score",
            database_url=database_url,
            channels=(RISK_CHANNEL,),
            step=lambda c: risk_step(c, now=utcnow(), settings=risk),
            poll_interval_s=min(600.0, risk.refresh_min * 60.0),
            stop_event=self._stop,
        )
        self.escalation = ListenWorker(  # escalation falls due with time: polls on its interval
            name="escalation",
            database_url=database_url,
            channels=(ESCALATION_CHANNEL,),
            step=lambda c: run_escalation(c, now=utcnow(), settings=settings),
            poll_interval_s=settings.escalation_interval_s,
            stop_event=self._stop,
        )
        duty = DutySettings()
        self.duties = ListenWorker(  # daily checks and meal samples missed become tickets
            name="duty-deadlines",
            database_url=database_url,
            channels=(DUTY_CHANNEL,),
            step=lambda c: _duty_step(c, duty),
            poll_interval_s=duty.interval_s,
            stop_event=self._stop,
        )
        self.traces = ListenWorker(  # incidents' sensor traces, kept beyond raw retention
            name="incident-traces",
            database_url=database_url,
            channels=(),
            step=lambda c: keep_incident_traces(c, now=utcnow()),
            poll_interval_s=TRACE_INTERVAL_S,
            stop_event=self._stop,
        )

        self.offload: ListenWorker | None = None
        if settings.evidence_store == "s3":  # edge snapshots: evidence_blobs -> the bucket
            bucket = s3_store(settings)
            self.offload = ListenWorker(
                name="evidence-offload",
                database_url=database_url,
                channels=(),
                step=lambda c: offload_blobs(c, bucket),
                poll_interval_s=settings.s3_offload_interval_s,
                stop_event=self._stop,
            )

    def _others(self) -> tuple[ListenWorker, ...]:
        extra = (self.offload,) if self.offload is not None else ()
        return (self.risk, self.escalation, self.duties, self.traces, *extra)

    def start(self) -> None:
        """Start both threads."""
        for engine in self.engines:
            engine.start()
        self.dispatcher.start()
        for w in self._others():
            w.start()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Block until both workers are listening (for tests and start-up logs)."""
        deadline = time.monotonic() + timeout
        for w in (*self.engines, self.dispatcher):
            if not w.connected.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Ask both threads to stop, wait for them, close the channel senders."""
        self._stop.set()
        for w in (*self.engines, self.dispatcher, *self._others()):
            if w.is_alive():
                w.join(timeout)
        close_channels(self._channels)

    def run_until(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set (the ``api worker`` command)."""
        self.start()
        try:
            while not stop.wait(1.0):
                if not (all(e.is_alive() for e in self.engines) and self.dispatcher.is_alive()):
                    logger.error("a worker thread died; stopping")
                    break
        finally:
            self.stop()
