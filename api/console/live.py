"""The live hub: PostgreSQL ``LISTEN bk_live`` fanned out to the console's event streams.

Triggers (migration 0018) announce every alarm, ticket, capture-review and violation
change on channel ``bk_live`` when its transaction commits, whoever wrote it (ingest,
the ticket engine, a person in the console). One thread per API process holds the only
listening connection and hands each announcement to every subscriber whose scope
allows the site, so a thousand open consoles cost one database connection, not a
thousand.

Events carry ids ``<boot>-<seq>``. A browser that reconnects sends the last id it saw
(``Last-Event-ID``); what it missed is replayed from a short in-memory backlog. When
that is impossible (another process or replica, a backlog overrun, the listening
connection was lost and announcements may have been missed) the subscriber is told to
``resync``: the page reloads its data once, so a gap never leaves a stale screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import threading
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from fastapi import FastAPI

from api.auth.scope import SiteScope

logger = logging.getLogger(__name__)

CHANNEL = "bk_live"
RESYNC = "resync"


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One announcement: its id, kind (alarm, ticket, review, violation, resync) and data."""

    id: str
    kind: str
    site_id: str | None
    data: dict[str, Any]

    def frame(self) -> str:
        """The event as a server-sent-events frame."""
        body = json.dumps({"kind": self.kind, **self.data}, ensure_ascii=False)
        return f"id: {self.id}\nevent: {self.kind}\ndata: {body}\n\n"


@dataclass(eq=False)
class Subscription:
    """One open event stream: its scope and the queue its events arrive on."""

    scope: SiteScope
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[LiveEvent | None] = field(default_factory=lambda: asyncio.Queue(256))
    overflowed: bool = False

    def offer(self, event: LiveEvent | None) -> None:
        """Queue ``event`` (on the subscriber's loop); a full queue becomes one resync."""
        if self.queue.full():
            self.overflowed = True  # the consumer is stuck: it resyncs when it drains
            return
        self.queue.put_nowait(event)


def parse_announcement(payload: str) -> tuple[str, str | None, dict[str, Any]] | None:
    """Kind, site and data of a ``bk_live`` payload; None (logged) for one that is not ours."""
    try:
        body = json.loads(payload)
    except ValueError:
        logger.warning("bk_live: payload is not JSON: %.80r", payload)
        return None
    if not isinstance(body, dict) or not isinstance(body.get("kind"), str):
        logger.warning("bk_live: payload names no kind: %.80r", payload)
        return None
    kind = str(body.pop("kind"))
    site = body.get("site_id")
    return kind, (str(site) if site is not None else None), body


class LiveHub:
    """Listens on ``bk_live`` in a thread and fans announcements out to subscribers."""

    def __init__(self, database_url: str, *, keep: int = 500, retry_s: float = 1.0) -> None:
        """Prepare the hub; :meth:`start` connects. ``keep`` events stay for replay."""
        self.database_url = database_url
        self.boot = secrets.token_hex(4)
        self.retry_s = retry_s
        self._seq = 0
        self._backlog: deque[tuple[int, LiveEvent]] = deque(maxlen=keep)
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the listening thread (it reconnects by itself)."""
        self._thread = threading.Thread(target=self._run, name="bk-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and end every open stream."""
        self._stop.set()
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            self._deliver(sub, None)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_listening(self, timeout: float) -> bool:
        """True once the hub listens (tests and health checks)."""
        return self._listening.wait(timeout)

    @property
    def last_id(self) -> str:
        """The id of the newest event (what a fresh subscriber has seen)."""
        with self._lock:
            return f"{self.boot}-{self._seq}"

    def subscribe(self, scope: SiteScope, last_event_id: str | None = None) -> Subscription:
        """A new subscription on the running loop; missed events replayed or one resync."""
        sub = Subscription(scope=scope, loop=asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
            replay = self._missed(last_event_id)
        if replay is None:
            sub.offer(self._resync_event())
        else:
            for event in replay:
                if event.site_id is None or scope.allows(event.site_id):
                    sub.offer(event)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a closed stream."""
        with self._lock:
            self._subs.discard(sub)

    def subscribers(self) -> int:
        """Number of open streams."""
        with self._lock:
            return len(self._subs)

    def publish(self, kind: str, site_id: str | None, data: dict[str, Any]) -> LiveEvent:
        """Number an event, keep it for replay and hand it to every subscriber in scope."""
        with self._lock:
            self._seq += 1
            event = LiveEvent(f"{self.boot}-{self._seq}", kind, site_id, data)
            self._backlog.append((self._seq, event))
            subs = [s for s in self._subs if site_id is None or s.scope.allows(site_id)]
        for sub in subs:
            self._deliver(sub, event)
        return event

    def _resync_event(self) -> LiveEvent:
        return LiveEvent(self.last_id, RESYNC, None, {})

    def _missed(self, last_event_id: str | None) -> list[LiveEvent] | None:
        """Events after ``last_event_id`` (lock held); None when they cannot all be known."""
        if not last_event_id:
            return []
        boot, _, seq_text = last_event_id.partition("-")
        if boot != self.boot or not seq_text.isdigit():
            return None
        seq = int(seq_text)
        if seq > self._seq:
            return None
        oldest = self._backlog[0][0] if self._backlog else self._seq + 1
        if seq + 1 < oldest:
            return None  # the backlog no longer reaches back that far
        return [e for n, e in self._backlog if n > seq]

    @staticmethod
    def _deliver(sub: Subscription, event: LiveEvent | None) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the subscriber is gone
            sub.loop.call_soon_threadsafe(sub.offer, event)

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    if not first:  # announcements may have been lost while reconnecting
                        self.publish(RESYNC, None, {})
                    first = False
                    logger.info("live hub listening on %s", CHANNEL)
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            parsed = parse_announcement(note.payload)
                            if parsed is not None:
                                self.publish(*parsed)
            except psycopg.Error as exc:
                self._listening.clear()
                if self._stop.is_set():
                    return
                logger.warning("live hub: %s; retrying in %.0f s", exc, self.retry_s)
                self._stop.wait(self.retry_s)


@asynccontextmanager
async def live_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run one hub per app, listening with the app pool's connection string."""
    hub = LiveHub(app.state.pool.conninfo)
    hub.start()
    app.state.live = hub
    try:
        yield
    finally:
        app.state.live = None
        await asyncio.to_thread(hub.stop)
