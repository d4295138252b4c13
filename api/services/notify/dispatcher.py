"""The notification dispatcher: claim due rows of the outbox, send them, log every attempt.

A claim moves ``next_attempt_at`` forward by a lease and commits before sending, so no row
lock is held while a slow SMTP server or webhook answers, and another dispatcher never
sends the same row at the same time. If a dispatcher dies mid-send, the lease runs out and
the row is sent again (at-least-once; webhooks carry an ``Idempotency-Key``).
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.metrics import DELIVERY_ATTEMPTS, DELIVERY_SECONDS
from api.services.notify.base import Channel, OutgoingMessage
from api.settings import ApiSettings
from bkcommon.errors import DeliveryError, PermanentDeliveryError

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

_DETAIL_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed notification: the message and how many attempts it had before this one."""

    message: OutgoingMessage
    attempts: int
    max_attempts: int


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How one attempt went."""

    ok: bool
    detail: str
    duration_ms: float
    permanent: bool = False


def backoff_delay_s(
    attempt: int, *, base_s: float, max_s: float, jitter: float, rng: random.Random
) -> float:
    """Delay before retrying after failed attempt number ``attempt`` (1-based).

    Exponential (``base_s * 2**(attempt-1)``), capped at ``max_s``, spread by ±``jitter``
    so that many failing rows do not retry in lockstep; never above ``max_s``.

    Example:
        >>> backoff_delay_s(3, base_s=2, max_s=600, jitter=0, rng=random.Random(0))
        8.0
    """
    raw = min(max_s, base_s * 2.0 ** max(0, attempt - 1))
    spread = 1.0 + jitter * (2.0 * rng.random() - 1.0)
    return float(min(max_s, max(0.0, raw * spread)))


def claim_limit(settings: ApiSettings, limit: int | None = None) -> int:
    """How many rows one dispatch may lease: no more than its senders can finish, at the
    slowest channel's timeout, within half the lease. Results are recorded after the whole
    batch; 100 rows sent 8 at a time against a slow endpoint took longer than the 60 s
    lease, and another replica claimed and sent them again (no channel deduplicates)."""
    slowest = max(settings.smtp_timeout_s, settings.webhook_timeout_s)
    rounds = max(1, int(settings.send_lease_s / 2 // slowest))
    return max(1, min(limit or settings.batch_size, settings.send_concurrency * rounds))


def claim_due(conn: Conn, *, now: datetime, settings: ApiSettings, limit: int) -> list[Claimed]:
    """Lease up to ``limit`` due pending notifications (committed before returning)."""
    lease_until = now + timedelta(seconds=settings.send_lease_s)
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """UPDATE notifications n SET next_attempt_at = %(lease)s
               FROM (SELECT id FROM notifications
                     WHERE status = 'pending' AND next_attempt_at <= %(now)s
                     ORDER BY next_attempt_at, id LIMIT %(limit)s
                     FOR UPDATE SKIP LOCKED) due
               WHERE n.id = due.id
               RETURNING n.id, n.channel, n.address, n.subject, n.body, n.payload,
                         n.attempts, n.max_attempts,
                         (SELECT pc.secret FROM person_channels pc
                          WHERE pc.person_id = n.person_id AND pc.kind = n.channel
                            AND pc.address = n.address LIMIT 1) AS secret""",
            {"lease": lease_until, "now": now, "limit": limit},
        ).fetchall()
    rows.sort(key=lambda r: int(r["id"]))
    return [
        Claimed(
            message=OutgoingMessage(
                notification_id=int(r["id"]),
                channel=str(r["channel"]),
                address=str(r["address"]),
                subject=str(r["subject"]),
                body=str(r["body"]),
                payload=dict(r["payload"] or {}),
                secret=r["secret"],
            ),
            attempts=int(r["attempts"]),
            max_attempts=int(r["max_attempts"]),
        )
        for r in rows
    ]


def attempt(msg: OutgoingMessage, channels: dict[str, Channel]) -> AttemptResult:
    """Send one message through its channel, timing it; never raises for a delivery failure."""
    sender = channels.get(msg.channel)
    if sender is None:
        return AttemptResult(False, f"no sender for channel {msg.channel!r}", 0.0, permanent=True)
    t0 = time.perf_counter()
    try:
        sender.send(msg)
    except DeliveryError as exc:
        return AttemptResult(
            False,
            str(exc)[:_DETAIL_CHARS],
            (time.perf_counter() - t0) * 1000,
            permanent=isinstance(exc, PermanentDeliveryError),
        )
    except Exception as exc:  # a bug in a sender must not kill the dispatcher
        logger.exception("channel %s crashed on notification %s", msg.channel, msg.notification_id)
        detail = f"{type(exc).__name__}: {exc}"[:_DETAIL_CHARS]
        return AttemptResult(False, detail, (time.perf_counter() - t0) * 1000)
    return AttemptResult(True, "delivered", (time.perf_counter() - t0) * 1000)


def record(
    conn: Conn,
    claimed: Claimed,
    result: AttemptResult,
    *,
    now: datetime,
    settings: ApiSettings,
    rng: random.Random,
    not_before: datetime | None = None,
) -> str:
    """Log the attempt and move the notification to sent, pending (with backoff, and no
    earlier than ``not_before``) or dead."""
    msg = claimed.message
    number = claimed.attempts + 1
    if result.ok:
        status, next_at = "sent", now
    elif result.permanent or number >= claimed.max_attempts:
        status, next_at = "dead", now
    else:
        delay = backoff_delay_s(
            number,
            base_s=settings.backoff_base_s,
            max_s=settings.backoff_max_s,
            jitter=settings.backoff_jitter,
            rng=rng,
        )
        status, next_at = "pending", now + timedelta(seconds=delay)
        if not_before is not None:
            next_at = max(next_at, not_before)
    with conn.transaction():
        conn.execute(
            "INSERT INTO notification_attempts (notification_id, at, ok, detail, duration_ms) "
            "VALUES (%s, %s, %s, %s, %s)",
            (msg.notification_id, now, result.ok, result.detail, result.duration_ms),
        )
        conn.execute(
            """UPDATE notifications SET status = %s, attempts = attempts + 1,
                   next_attempt_at = %s, last_error = %s,
                   sent_at = CASE WHEN %s THEN %s ELSE sent_at END
               WHERE id = %s AND status = 'pending'""",
            (
                status,
                next_at,
                None if result.ok else result.detail,
                result.ok,
                now,
                msg.notification_id,
            ),
        )
    outcome = "sent" if result.ok else ("dead" if status == "dead" else "retry")
    DELIVERY_ATTEMPTS.labels(msg.channel, outcome).inc()
    DELIVERY_SECONDS.labels(msg.channel).observe(result.duration_ms / 1000)
    if result.ok:
        logger.info("notification %s sent via %s", msg.notification_id, msg.channel)
    else:
        logger.warning(
            "notification %s via %s failed (attempt %d/%d, now %s): %s",
            msg.notification_id,
            msg.channel,
            number,
            claimed.max_attempts,
            status,
            result.detail,
        )
    return status


def dispatch_due(
    conn: Conn,
    *,
    now: datetime,
    settings: ApiSettings,
    channels: dict[str, Channel],
    rng: random.Random | None = None,
    limit: int | None = None,
) -> int:
    """Send every due notification (up to ``limit``); return how many attempts were made.

    Sends run in parallel (``settings.send_concurrency``), outside any database lock.
    """
    t0 = time.monotonic()
    claimed = claim_due(conn, now=now, settings=settings, limit=claim_limit(settings, limit))
    if not claimed:
        return 0
    rng = rng or random.Random()
    # A channel's timeout bounds each socket operation, not the send: an endpoint that
    # trickles its answer a byte at a time held the whole dispatcher (every other officer's
    # alerts) for as long as it liked. The batch gets half the lease, as ``claim_limit``
    # plans; a send still running then is abandoned (its thread ends on its own), recorded
    # as a failed attempt and retried no earlier than its lease ends.
    budget_s = settings.send_lease_s / 2
    workers = min(settings.send_concurrency, len(claimed))
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bk-send")
    try:
        futures = [pool.submit(attempt, c.message, channels) for c in claimed]
        wait(futures, timeout=budget_s)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    done_at = now + timedelta(seconds=time.monotonic() - t0)  # ``now`` moved on while sending
    lease_end = now + timedelta(seconds=settings.send_lease_s)
    for c, f in zip(claimed, futures, strict=True):
        if f.done() and not f.cancelled():
            record(conn, c, f.result(), now=done_at, settings=settings, rng=rng)
        elif f.cancelled():  # never started: hand the row back without counting an attempt
            conn.execute(
                "UPDATE notifications SET next_attempt_at = %s "
                "WHERE id = %s AND status = 'pending'",
                (done_at, c.message.notification_id),
            )
        else:
            detail = f"no answer within {budget_s:g} s; send abandoned"
            result = AttemptResult(False, detail, budget_s * 1000)
            record(conn, c, result, now=done_at, settings=settings, rng=rng, not_before=lease_end)
    return len(claimed)
