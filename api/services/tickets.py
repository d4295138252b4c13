"""The ticket engine: turn findings into rectification tickets, occurrences and notifications.

Each finding is claimed with ``FOR UPDATE SKIP LOCKED`` and handled in its own transaction,
so several engines (threads, processes, API replicas) share the outbox without waiting on
each other and without a lock cycle. Every effect is idempotent: the partial unique index
``tickets_one_open_idx`` makes ``INSERT ... ON CONFLICT DO NOTHING`` the arbiter of who
opens a ticket, notifications carry a ``dedupe_key``, and a finding is marked processed in
the same transaction as its effects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from api.metrics import FINDINGS_PROCESSED, TICKETS_OPENED
from api.services.deadlines import due_after, resolve_deadline
from api.services.labels import SUBJECT_LABELS, ticket_title
from api.services.notify import routing
from api.services.notify.message import TicketFacts, ticket_opened
from api.services.notify.routing import enqueue_for_roles
from api.services.triage import queue_for_review, triage_mode
from api.settings import ApiSettings
from bkcommon.localtime import local_date

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

FINDINGS_CHANNEL = "bk_findings"
NOTIFICATIONS_CHANNEL = routing.NOTIFICATIONS_CHANNEL

OPENING_KINDS: dict[str, str] = {
    "alarm_raised": "alarm",
    "violation": "violation",
    "inspection": "inspection",
    "manual": "manual",
    "rapid_test": "rapid_test",
    "complaint": "complaint",
}
"""Finding kind → ticket source, for the kinds that open a ticket or add an occurrence: a
device alarm, a camera violation, an inspection item, a ticket opened by hand, a failed rapid
test (and the flags it raises on the supplier's other deliveries), a confirmed complaint."""

_ERROR_MAX_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Finding:
    """One row of the findings outbox, as the engine reads it."""

    id: int
    finding_key: str
    kind: str
    site_id: str
    subject: str
    rule: str
    tier: int
    occurred_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What handling one finding did."""

    finding_id: int
    action: Literal[
        "opened",
        "occurrence",
        "close_proposed",
        "no_ticket",
        "stale_clear",
        "error",
        "deferred",
        "review",
    ]
    ticket_id: int | None = None


class _DeferredError(Exception):
    """An earlier finding of the same subject is still in flight; handle this one later."""


def process_findings(
    conn: Conn, *, now: datetime, settings: ApiSettings, limit: int | None = None
) -> int:
    """Handle up to ``limit`` unprocessed findings (default ``settings.batch_size``).

    Returns how many findings were marked processed. ``conn`` must not be inside a
    transaction: each finding commits on its own. Database connection problems and
    lock conflicts propagate (the caller retries); any other error is recorded on its
    finding, which is then marked processed so one bad row never blocks the outbox.
    """
    budget = settings.batch_size if limit is None else limit
    deferred: list[int] = []
    done = 0
    while done < budget:
        outcome = process_one(conn, now=now, settings=settings, skip=deferred)
        if outcome is None:
            break
        if outcome.action == "deferred":
            deferred.append(outcome.finding_id)
            continue
        done += 1
    return done


def process_one(
    conn: Conn, *, now: datetime, settings: ApiSettings, skip: list[int] | None = None
) -> Outcome | None:
    """Claim and handle the oldest unclaimed finding; None when there is none."""
    with conn.transaction(), conn.cursor(row_factory=class_row(Finding)) as cur:
        finding = cur.execute(
            """SELECT id, finding_key, kind, site_id, subject, rule, tier, occurred_at, payload
               FROM findings
               WHERE processed_at IS NULL AND NOT (id = ANY(%s))
               ORDER BY id LIMIT 1
               FOR UPDATE SKIP LOCKED""",
            (skip or [],),
        ).fetchone()
        if finding is None:
            return None
        try:
            with conn.transaction():  # savepoint: an error undoes only this finding's effects
                outcome = _apply(conn, finding, now=now, settings=settings)
        except _DeferredError:
            return Outcome(finding.id, "deferred")
        except psycopg.OperationalError:
            raise  # connection lost, deadlock, lock timeout: retry the whole finding later
        except Exception as exc:
            logger.exception(
                "finding %s (%s, %s/%s/%s) failed; recorded and skipped",
                finding.id,
                finding.kind,
                finding.site_id,
                finding.rule,
                finding.subject,
                extra={"site_id": finding.site_id, "worker": "ticket-engine"},
            )
            outcome = Outcome(finding.id, "error")
            conn.execute(
                "UPDATE findings SET processed_at = %s, error = %s WHERE id = %s",
                (now, f"{type(exc).__name__}: {exc}"[:_ERROR_MAX_CHARS], finding.id),
            )
        else:
            conn.execute(
                "UPDATE findings SET processed_at = %s, ticket_id = %s, error = NULL WHERE id = %s",
                (now, outcome.ticket_id, finding.id),
            )
    FINDINGS_PROCESSED.labels(finding.kind, outcome.action).inc()
    return outcome


def _apply(conn: Conn, finding: Finding, *, now: datetime, settings: ApiSettings) -> Outcome:
    """Apply one finding inside the caller's transaction."""
    if finding.kind == "violation" and _open_ticket_id(conn, finding) is None:
        mode = triage_mode(
            conn, camera_id=finding.subject, rule=finding.rule, default=settings.triage_default
        )
        if mode == "review":
            queue_for_review(
                conn,
                finding_id=finding.id,
                site_id=finding.site_id,
                camera_id=finding.subject,
                rule=finding.rule,
                payload=finding.payload,
                now=now,
            )
            return Outcome(finding.id, "review")
    if finding.kind in OPENING_KINDS:
        return _open_or_add_occurrence(conn, finding, now=now, settings=settings)
    if finding.kind == "alarm_cleared":
        return _propose_close(conn, finding, now=now)
    raise ValueError(f"unknown finding kind {finding.kind!r}")


def _open_ticket_id(conn: Conn, finding: Finding) -> tuple[int, str] | None:
    """Lock and return (id, ticket_no) of the open ticket for the finding's site, rule, subject."""
    row = conn.execute(
        """SELECT id, ticket_no FROM tickets
           WHERE site_id = %s AND rule = %s AND subject = %s AND status <> 'closed'
           FOR UPDATE""",
        (finding.site_id, finding.rule, finding.subject),
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def load_finding(conn: Conn, finding_id: int) -> Finding | None:
    """One finding by id, locked for the caller's transaction."""
    with conn.cursor(row_factory=class_row(Finding)) as cur:
        return cur.execute(
            """SELECT id, finding_key, kind, site_id, subject, rule, tier, occurred_at, payload
               FROM findings WHERE id = %s FOR UPDATE""",
            (finding_id,),
        ).fetchone()


def open_or_add(conn: Conn, finding: Finding, *, now: datetime, settings: ApiSettings) -> Outcome:
    """Open a ticket for ``finding`` or add it as an occurrence, skipping triage, and mark it
    processed (inside the caller's transaction): manual entries and confirmed captures."""
    outcome = _open_or_add_occurrence(conn, finding, now=now, settings=settings)
    conn.execute(
        "UPDATE findings SET processed_at = %s, ticket_id = %s, error = NULL WHERE id = %s",
        (now, outcome.ticket_id, finding.id),
    )
    FINDINGS_PROCESSED.labels(finding.kind, outcome.action).inc()
    return outcome


def _open_or_add_occurrence(
    conn: Conn, finding: Finding, *, now: datetime, settings: ApiSettings
) -> Outcome:
    """Add an occurrence to the open ticket, or open one (and notify the site's officers)."""
    for _ in range(3):
        existing = _open_ticket_id(conn, finding)
        if existing is not None:
            ticket_id = existing[0]
            conn.execute(
                """UPDATE tickets SET occurrences = occurrences + 1,
                       last_occurrence_at = greatest(last_occurrence_at, %s),
                       close_proposed_at = NULL
                   WHERE id = %s""",
                (finding.occurred_at, ticket_id),
            )
            _event(conn, ticket_id, now, "occurrence", finding)
            logger.info(
                "ticket %s: occurrence from finding %s",
                existing[1],
                finding.id,
                extra={"ticket_id": ticket_id, "site_id": finding.site_id},
            )
            return Outcome(finding.id, "occurrence", ticket_id)
        opened = _insert_ticket(conn, finding, now=now, settings=settings)
        if opened is not None:
            _event(conn, opened.ticket_id, now, "opened", finding)
            n = _enqueue_opening_notifications(
                conn, opened, source=OPENING_KINDS[finding.kind], now=now, settings=settings
            )
            TICKETS_OPENED.labels(str(finding.tier)).inc()
            logger.info(
                "ticket %s opened for %s/%s/%s, %d notification(s) queued",
                opened.ticket_no,
                finding.site_id,
                finding.rule,
                finding.subject,
                n,
                extra={"ticket_id": opened.ticket_id, "site_id": finding.site_id},
            )
            return Outcome(finding.id, "opened", opened.ticket_id)
        # Another engine opened it between our look-up and our insert: take the update path.
    raise RuntimeError("the open ticket kept appearing and disappearing; giving up")


def _subject_info(conn: Conn, subject: str) -> tuple[str, str | None]:
    """Display name and equipment profile of a sensor or camera id; the words for a duty
    subject (``SUBJECT_LABELS``); else the id itself."""
    row = conn.execute(
        """SELECT name, profile FROM sensors WHERE id = %(s)s
           UNION ALL SELECT name, NULL FROM cameras WHERE id = %(s)s
           LIMIT 1""",
        {"s": subject},
    ).fetchone()
    if row is None:
        return SUBJECT_LABELS.get(subject, subject), None
    name = str(row[0]) if row[0] else subject
    return name, (str(row[1]) if row[1] is not None else None)


def _insert_ticket(
    conn: Conn, finding: Finding, *, now: datetime, settings: ApiSettings
) -> TicketFacts | None:
    """Insert the open ticket; None when a concurrent engine already holds the open one."""
    subject_name, profile = _subject_info(conn, finding.subject)
    if finding.payload.get("subject_name"):  # a finding that names its own subject
        subject_name = str(finding.payload["subject_name"])
    title = ticket_title(
        finding.rule, "" if finding.subject in SUBJECT_LABELS else subject_name, profile
    )
    due_at = due_after(
        conn,
        now,
        resolve_deadline(
            conn, site_id=finding.site_id, rule=finding.rule, tier=finding.tier, settings=settings
        ),
    )
    details = {
        "first_finding_id": finding.id,
        "finding_key": finding.finding_key,
        "subject_name": subject_name,
        "profile": profile,
        "payload": finding.payload,
    }
    row = conn.execute(
        """WITH n AS (SELECT nextval(pg_get_serial_sequence('tickets', 'id')) AS id)
           INSERT INTO tickets (id, ticket_no, site_id, source, rule, subject, tier, title,
                                opened_at, due_at, last_occurrence_at, details)
           SELECT n.id, %(prefix)s || n.id, %(site)s, %(source)s, %(rule)s, %(subject)s,
                  %(tier)s, %(title)s, %(now)s, %(due)s, %(occurred)s, %(details)s
           FROM n
           ON CONFLICT (site_id, rule, subject) WHERE status <> 'closed' DO NOTHING
           RETURNING id, ticket_no,
                     (SELECT name FROM sites WHERE id = %(site)s)""",
        {
            # the number carries the day the ticket opened on the region's calendar (what the
            # people reading it live by), not UTC's: at 02:00 China time it is already tomorrow
            "prefix": f"ZG-{local_date(now):%Y%m%d}-",
            "site": finding.site_id,
            "source": OPENING_KINDS[finding.kind],
            "rule": finding.rule,
            "subject": finding.subject,
            "tier": finding.tier,
            "title": title,
            "now": now,
            "due": due_at,
            "occurred": finding.occurred_at,
            "details": Jsonb(details),
        },
    ).fetchone()
    if row is None:
        return None
    ticket_id = int(row[0])
    return TicketFacts(
        ticket_id=ticket_id,
        ticket_no=str(row[1]),
        site_id=finding.site_id,
        site_name=str(row[2] or finding.site_id),
        rule=finding.rule,
        subject=finding.subject,
        tier=finding.tier,
        title=title,
        opened_at=now,
        due_at=due_at,
        link=settings.link(f"/console/tickets/{ticket_id}"),
    )


def _event(conn: Conn, ticket_id: int, now: datetime, kind: str, finding: Finding) -> None:
    """Append one system event to a ticket's timeline."""
    data: dict[str, Any] = {
        "finding_id": finding.id,
        "finding_key": finding.finding_key,
        "finding_kind": finding.kind,
        "occurred_at": finding.occurred_at.isoformat(),
    }
    if "alarm_id" in finding.payload:
        data["alarm_id"] = finding.payload["alarm_id"]
    conn.execute(
        "INSERT INTO ticket_events (ticket_id, at, actor, kind, data) "
        "VALUES (%s, %s, 'system', %s, %s)",
        (ticket_id, now, kind, Jsonb(data)),
    )


def _enqueue_opening_notifications(
    conn: Conn, facts: TicketFacts, *, source: str, now: datetime, settings: ApiSettings
) -> int:
    """Queue the opening notice for every officer channel (with an acknowledge link: the
    officer is the one who acts) and, for the sources of ``BK_API_DUAL_PUSH_SOURCES`` (camera
    captures by default), for the site's regulator too, who is told but does not acknowledge
    (双推送); NOTIFY. Returns how many notices were queued."""
    n = enqueue_for_roles(
        conn,
        facts=facts,
        roles=("officer",),
        key="opened",
        build=lambda link: ticket_opened(facts, link),
        now=now,
        settings=settings,
        with_ack_link=True,
    )
    if n == 0:
        # No officer with a channel: the ticket must not wait, unheard, for the director's
        # "not acknowledged" step hours later. The director hears now and may acknowledge.
        n += enqueue_for_roles(
            conn,
            facts=facts,
            roles=("director",),
            key="opened-no-officer",
            build=lambda link: ticket_opened(facts, link),
            now=now,
            settings=settings,
            with_ack_link=True,
        )
    if source in settings.dual_push_sources:
        n += enqueue_for_roles(
            conn,
            facts=facts,
            roles=("regulator",),
            key="opened-regulator",
            build=lambda _link: ticket_opened(facts, None),
            now=now,
            settings=settings,
        )
    return n


def _propose_close(conn: Conn, finding: Finding, *, now: datetime) -> Outcome:
    """Record that the data shows the fix; a person confirms the close later."""
    earlier = conn.execute(
        """SELECT 1 FROM findings
           WHERE processed_at IS NULL AND id < %s
             AND site_id = %s AND rule = %s AND subject = %s
           LIMIT 1""",
        (finding.id, finding.site_id, finding.rule, finding.subject),
    ).fetchone()
    if earlier is not None:
        raise _DeferredError  # its raise is being handled by another engine right now
    existing = _open_ticket_id(conn, finding)
    if existing is None:
        logger.info(
            "finding %s: %s cleared on %s with no open ticket",
            finding.id,
            finding.rule,
            finding.subject,
            extra={"site_id": finding.site_id},
        )
        return Outcome(finding.id, "no_ticket")
    ticket_id = existing[0]
    later = conn.execute(
        """SELECT 1 FROM findings
           WHERE ticket_id = %s AND id > %s AND kind <> 'alarm_cleared' LIMIT 1""",
        (ticket_id, finding.id),
    ).fetchone()
    if later is not None:
        # A newer raise (another alarm of the subject) was counted on the ticket before this
        # older clear came through, as engines working off a backlog may order them: the
        # problem is back, so the ticket is not proposed for closing. Ids, not times: an
        # offline alarm's clear can carry an earlier time than its raise.
        _event(conn, ticket_id, now, "alarm_cleared", finding)
        return Outcome(finding.id, "stale_clear", ticket_id)
    conn.execute(
        "UPDATE tickets SET close_proposed_at = %s WHERE id = %s",
        (now, ticket_id),
    )
    _event(conn, ticket_id, now, "alarm_cleared", finding)
    return Outcome(finding.id, "close_proposed", ticket_id)
