"""Store-and-forward outbox on disk: a message is removed only after the broker acknowledged it.

SQLite in WAL mode with ``synchronous=FULL``: every ``put`` is on disk before it
returns, so a ``kill -9``, a power cut or a reboot loses nothing that was put.
(WAL + NORMAL survives a process crash but may lose the last commits on power
loss; violations are a few per minute, so one fsync each costs nothing.) The
evidence JPEG travels inside the payload, so a row is atomic: message and
evidence together or neither.

The outbox is bounded by bytes (the box's disk budget) and rows, and it watches
the free space of its filesystem: it keeps ``disk_reserve_bytes`` free for
SQLite's own files, so a disk filled by something else counts as a smaller
budget. Over the budget, the evidence images of the OLDEST rows are pruned first: the inline JPEG
is removed from the payload, its hash, size and boxes stay, and
``details.evidence_pruned`` says why it is missing. Events are never given up to
make room for pictures: only when the rows are still over the budget with every
image pruned (or over the row bound) are the oldest rows dropped, as a last
resort. Prunes and drops are logged, counted in persistent counters and
reported in the box status. A free-space estimate alone never drops an event:
only the configured bounds do. If the disk fills anyway (SQLite answers "database
or disk is full"), every image still in the outbox is pruned and the event is
stored again, without its own image if need be; only when even that fails does
``put`` raise :class:`OutboxFullError`.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

_SET_ASIDE_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox_set_aside (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created_at REAL NOT NULL,
    set_aside_at REAL NOT NULL,
    reason TEXT NOT NULL
)
"""
"""Created on first use, so that an outbox that never sets a row aside costs no page for it."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    pruned INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox_counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


DEFAULT_DISK_RESERVE_BYTES = 32 * 1024 * 1024
"""Free space the outbox leaves on its filesystem (SQLite's WAL, the OS, logs)."""


class OutboxFullError(RuntimeError):
    """The disk is full: an event could not be stored even with every image pruned."""


def _disk_full(exc: sqlite3.OperationalError) -> bool:
    return "full" in str(exc).lower()


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One pending message: its row id, event id, topic and payload bytes."""

    id: int
    event_id: str
    topic: str
    payload: bytes
    created_at: float
    attempts: int


@dataclass(frozen=True, slots=True)
class SetAsideRow:
    """A message the broker can never take, kept off the queue with the reason."""

    id: int
    event_id: str
    topic: str
    reason: str


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Depth, size, age of the oldest row and the drops since the outbox was created."""

    depth: int
    bytes_total: int
    oldest_created_at: float | None
    dropped_total: int
    max_bytes: int
    max_rows: int
    evidence_pruned_total: int = 0
    set_aside_total: int = 0


class Outbox:
    """A bounded, crash-safe FIFO of messages keyed by event id (one row per event)."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 512 * 1024 * 1024,
        max_rows: int = 100_000,
        on_drop: Callable[[int], None] | None = None,
        disk_reserve_bytes: int | None = DEFAULT_DISK_RESERVE_BYTES,
        free_bytes: Callable[[], int] | None = None,
    ) -> None:
        """Open or create the outbox at ``path``; ``on_drop(n)`` is told of dropped rows.

        ``disk_reserve_bytes`` (None: ignore free space) is left free on the filesystem;
        ``free_bytes`` measures the free space (default: of ``path``'s directory).
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_rows = max_rows
        self.disk_reserve_bytes = disk_reserve_bytes
        self._free_bytes = free_bytes or (lambda: shutil.disk_usage(self.path.parent).free)
        self._on_drop = on_drop
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        # Freed pages are not overwritten with zeros (Debian's SQLite turns secure_delete on):
        # zeroing writes every pruned image page into the WAL, so on a full disk pruning the
        # old evidence needed as much room as it would free, and new events were refused.
        self._db.execute("PRAGMA secure_delete=OFF")
        # Checkpoint the WAL every 64 pages and keep it small: on a nearly full disk the WAL
        # is what grows, and freed pages are reused only once checkpointed.
        self._db.execute("PRAGMA wal_autocheckpoint=64")
        self._db.execute("PRAGMA journal_size_limit=1048576")
        self._db.executescript(_SCHEMA)
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
        if "pruned" not in cols:  # an outbox written before evidence pruning existed
            self._db.execute("ALTER TABLE outbox ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        """Close the database (rows stay on disk)."""
        with self._lock:
            self._db.close()

    def put(
        self, event_id: str, topic: str, payload: bytes, created_at: float | None = None
    ) -> bool:
        """Store a message durably; return False when that event id is already stored.

        When the store is over its bounds afterwards, the oldest rows are dropped.
        """
        size = len(payload)
        if size > self.max_bytes:
            raise ValueError(f"payload of {size} bytes exceeds the outbox limit {self.max_bytes}")
        now = time.time() if created_at is None else created_at
        with self._lock:
            try:
                inserted, pruned, dropped = self._put(event_id, topic, payload, now)
            except sqlite3.OperationalError as exc:
                if not _disk_full(exc):
                    raise
                inserted, pruned, dropped = self._put_on_full_disk(
                    event_id, topic, payload, now, exc
                )
        if pruned:
            logger.warning(
                "outbox over its disk budget (%d bytes, %s bytes free on disk): evidence images "
                "of the %d oldest event(s) pruned, the events are kept (event ids %s)",
                self.max_bytes,
                self._free_text(),
                len(pruned),
                ", ".join(pruned[:5]),
            )
        if dropped:
            logger.error(
                "outbox full (max %d bytes, %d rows) with every image pruned: dropped %d oldest "
                "message(s), event ids %s",
                self.max_bytes,
                self.max_rows,
                len(dropped),
                ", ".join(dropped[:5]),
            )
            if self._on_drop is not None:
                self._on_drop(len(dropped))
        return inserted

    def _free_text(self) -> str:
        try:
            return str(self._free_bytes())
        except OSError:
            return "?"

    def _put(
        self, event_id: str, topic: str, payload: bytes, now: float
    ) -> tuple[bool, list[str], list[str]]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO outbox(event_id, topic, payload, bytes, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (event_id, topic, payload, len(payload), now),
            )
            inserted = cur.rowcount == 1
            pruned, dropped = self._enforce_bounds() if inserted else ([], [])
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        return inserted, pruned, dropped

    def _put_on_full_disk(
        self, event_id: str, topic: str, payload: bytes, now: float, exc: Exception
    ) -> tuple[bool, list[str], list[str]]:
        """The disk filled before the budget said so: prune every image, store the event."""
        logger.error(
            "outbox: the disk is full (%s); pruning evidence images to keep event %s", exc, event_id
        )
        pruned: list[str] = []
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL's pages back first
            self._db.execute("BEGIN IMMEDIATE")
            (total,) = self._db.execute("SELECT coalesce(sum(bytes), 0) FROM outbox").fetchone()
            _, pruned = self._prune_evidence(int(total), 0)
            self._db.execute("COMMIT")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            pruned = []
        slim = strip_evidence(payload)
        for body in (payload, slim):
            if body is None:
                continue
            try:
                inserted, more, dropped = self._put(event_id, topic, body, now)
            except sqlite3.OperationalError as again:
                if not _disk_full(again):
                    raise
                continue
            if body is slim:
                more = [*more, event_id]
                self._count_safely("evidence_pruned", 1)
            return inserted, pruned + more, dropped
        raise OutboxFullError(
            f"the disk holding {self.path} is full: event {event_id} could not be stored even "
            "without its image"
        ) from exc

    def _count_safely(self, name: str, n: int) -> None:
        try:
            self._count(name, n)
        except sqlite3.OperationalError:
            logger.warning("outbox counter %s not updated (disk full)", name)

    def _disk_budget(self, total: int) -> int:
        """Bytes the rows may use: the configured budget, less what the disk lacks."""
        if self.disk_reserve_bytes is None:
            return self.max_bytes
        try:
            free = self._free_bytes()
        except OSError:
            return self.max_bytes
        pages, size = (
            self._db.execute("PRAGMA freelist_count").fetchone()[0],
            self._db.execute("PRAGMA page_size").fetchone()[0],
        )
        free += int(pages) * int(size)  # free pages inside the file are reused first
        return min(self.max_bytes, total + free - self.disk_reserve_bytes)

    def _prune_evidence(self, total: int, limit: int) -> tuple[int, list[str]]:
        """Strip inline images, oldest first, until ``total`` fits ``limit``; return it and
        the ids."""
        pruned: list[str] = []
        # ids and sizes only: one image at a time in memory, never the whole outbox
        cur = self._db.execute(
            "SELECT id, event_id, bytes FROM outbox WHERE pruned = 0 ORDER BY id"
        )
        for oid, eid, size in cur.fetchall():
            if total <= limit:
                break
            (payload,) = self._db.execute(
                "SELECT payload FROM outbox WHERE id = ?", (oid,)
            ).fetchone()
            slim = strip_evidence(bytes(payload))
            if slim is None:
                self._db.execute("UPDATE outbox SET pruned = 1 WHERE id = ?", (oid,))
                continue
            self._db.execute(
                "UPDATE outbox SET payload = ?, bytes = ?, pruned = 1 WHERE id = ?",
                (slim, len(slim), oid),
            )
            total -= size - len(slim)
            pruned.append(eid)
        if pruned:
            self._count("evidence_pruned", len(pruned))
        return total, pruned

    def _count(self, name: str, n: int) -> None:
        self._db.execute(
            "INSERT INTO outbox_counters(name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, n),
        )

    def _enforce_bounds(self) -> tuple[list[str], list[str]]:
        rows, total = self._db.execute(
            "SELECT count(*), coalesce(sum(bytes), 0) FROM outbox"
        ).fetchone()
        pruned: list[str] = []
        budget = self._disk_budget(total)
        if total > budget:
            total, pruned = self._prune_evidence(total, budget)
        dropped: list[str] = []  # only the configured bounds drop events, never a disk estimate
        while rows > self.max_rows or total > self.max_bytes:
            oid, eid, size = self._db.execute(
                "SELECT id, event_id, bytes FROM outbox ORDER BY id LIMIT 1"
            ).fetchone()
            self._db.execute("DELETE FROM outbox WHERE id = ?", (oid,))
            dropped.append(eid)
            rows -= 1
            total -= size
        if dropped:
            self._count("dropped", len(dropped))
        return pruned, dropped

    def peek(self, n: int, exclude: set[int] | None = None) -> list[OutboxRow]:
        """Return up to ``n`` oldest rows, skipping the row ids in ``exclude`` (in flight)."""
        skip = exclude or set()
        out: list[OutboxRow] = []
        with self._lock:
            cur = self._db.execute(
                "SELECT id, event_id, topic, payload, created_at, attempts FROM outbox ORDER BY id"
            )
            for rid, eid, topic, payload, created, attempts in cur:
                if rid in skip:
                    continue
                out.append(OutboxRow(rid, eid, topic, bytes(payload), created, attempts))
                if len(out) >= n:
                    break
            cur.close()
        return out

    def mark_attempt(self, row_id: int) -> None:
        """Count one publish attempt of a row (visible in ``brightkitchen edge outbox``)."""
        with self._lock:
            self._db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", (row_id,))

    def ack(self, row_id: int) -> bool:
        """Delete a row the broker acknowledged; return False when it was already gone."""
        with self._lock:
            cur = self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            return cur.rowcount == 1

    def set_aside(self, row_id: int, reason: str) -> bool:
        """Move a row the broker can never take off the queue, keeping it and the reason."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(_SET_ASIDE_SCHEMA)
                cur = self._db.execute(
                    "INSERT INTO outbox_set_aside(id, event_id, topic, payload, created_at,"
                    " set_aside_at, reason) SELECT id, event_id, topic, payload, created_at, ?, ?"
                    " FROM outbox WHERE id = ?",
                    (time.time(), reason, row_id),
                )
                moved = cur.rowcount == 1
                if moved:
                    self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                    self._count("set_aside", 1)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        return moved

    def set_aside_rows(self) -> list[SetAsideRow]:
        """The rows set aside, oldest first."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, event_id, topic, reason FROM outbox_set_aside ORDER BY id"
                ).fetchall()
            except sqlite3.OperationalError:  # no such table: nothing was ever set aside
                rows = []
        return [SetAsideRow(*r) for r in rows]

    def depth(self) -> int:
        """Number of messages waiting to be acknowledged."""
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(n)

    def stats(self) -> OutboxStats:
        """Depth, bytes, oldest row time and total drops."""
        with self._lock:
            n, total, oldest = self._db.execute(
                "SELECT count(*), coalesce(sum(bytes), 0), min(created_at) FROM outbox"
            ).fetchone()
            counters = dict(self._db.execute("SELECT name, value FROM outbox_counters").fetchall())
        return OutboxStats(
            depth=int(n),
            bytes_total=int(total),
            oldest_created_at=None if oldest is None else float(oldest),
            dropped_total=int(counters.get("dropped", 0)),
            max_bytes=self.max_bytes,
            max_rows=self.max_rows,
            evidence_pruned_total=int(counters.get("evidence_pruned", 0)),
            set_aside_total=int(counters.get("set_aside", 0)),
        )


def strip_evidence(payload: bytes) -> bytes | None:
    """The violation payload without its inline JPEG (hash, size and boxes kept, and
    ``details.evidence_pruned`` set), or None when it carries no inline image."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    evidence = data.get("evidence") if isinstance(data, dict) else None
    if not isinstance(evidence, dict) or not evidence.get("jpeg_b64"):
        return None
    del evidence["jpeg_b64"]
    details = data.get("details")
    if isinstance(details, dict):
        details["evidence_pruned"] = "outbox over its disk budget"
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
