"""The escalation ladder (三次预警 / yellow card → red card), computed from stored times.

For each ticket that is not closed, every step's due time follows from columns of the
ticket (``opened_at`` or ``reopened_at``, ``due_at``, ``acknowledged_at``, ``status``,
``tier``) and the settings, never from in-memory timers, so a restart or several API
replicas neither skip nor repeat a step. A step is done when its ``escalation_steps`` row
is inserted: ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` decides which worker
performs it, in the same transaction as the ticket update, the timeline entry and the
notices. A reopened ticket starts a new cycle with fresh steps.

| step | when | condition | who hears |
|---|---|---|---|
| reminder | due - reminder_before_h | not rectified | officer |
| warning | due | not rectified | officer, director |
| director | start + unack_after_h | not acknowledged | director |
| regulator | due + regulator_after_h | not rectified | regulator |
| yellow_card | due + yellow_card_after_d (tier 1) | not rectified | director, regulator |
| red_card | due + red_card_after_d (tier 1) | not rectified | director, regulator |
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.metrics import ESCALATION_STEPS, SLA_BREACHES
from api.services.notify.message import ticket_event
from api.services.notify.routing import enqueue_for_roles, load_facts
from api.settings import ApiSettings

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]

_UNRESOLVED = ("open", "acknowledged", "rejected")

ESCALATION_CHANNEL = "bk_escalation"
"""NOTIFY this to make the escalation workers look now (they also poll)."""


@dataclass(frozen=True, slots=True)
class StepRule:
    """One rung of the ladder: its level, who hears, whether it asks for acknowledgement."""

    name: str
    level: int
    roles: tuple[str, ...]
    ack_link: bool = False
    card: str | None = None


STEPS: tuple[StepRule, ...] = (
    StepRule("reminder", 1, ("officer",), ack_link=True),
    StepRule("warning", 2, ("officer", "director"), ack_link=True),
    StepRule("director", 3, ("director",), ack_link=True),
    StepRule("regulator", 4, ("regulator",)),
    StepRule("yellow_card", 5, ("director", "regulator"), card="yellow"),
    StepRule("red_card", 6, ("director", "regulator"), card="red"),
)
_BY_NAME = {s.name: s for s in STEPS}


def due_steps(
    ticket: dict[str, Any], *, now: datetime, settings: ApiSettings
) -> list[tuple[str, datetime]]:
    """Steps of ``ticket`` that are due at ``now`` with their due times (pure; order of STEPS).

    ``ticket`` needs status, tier, opened_at, reopened_at, due_at, acknowledged_at.
    """
    status = str(ticket["status"])
    if status not in _UNRESOLVED:
        return []
    start: datetime = ticket["reopened_at"] or ticket["opened_at"]
    due: datetime = ticket["due_at"]
    when: dict[str, datetime | None] = {
        "reminder": max(start, due - timedelta(hours=settings.reminder_before_h)),
        "warning": due,
        "director": (
            start + timedelta(hours=settings.unack_after_h)
            if ticket["acknowledged_at"] is None
            else None
        ),
        "regulator": due + timedelta(hours=settings.regulator_after_h),
        "yellow_card": (
            due + timedelta(days=settings.yellow_card_after_d) if ticket["tier"] == 1 else None
        ),
        "red_card": due + timedelta(days=settings.red_card_after_d)
        if ticket["tier"] == 1
        else None,
    }
    return [(s.name, at) for s in STEPS if (at := when[s.name]) is not None and at <= now]


def run_escalation(conn: Conn, *, now: datetime, settings: ApiSettings, limit: int = 500) -> int:
    """Perform every escalation step due at ``now``; return how many steps this call did.

    Safe to run from any number of workers at once: each ticket is handled under
    ``FOR UPDATE SKIP LOCKED`` and each step is recorded once by its primary key. Tickets are
    read ``limit`` at a time in deadline order, page after page, and a ticket whose ladder is
    complete for its cycle (its last step done, and acknowledged or its director told) is
    not read at all: with one fixed page, 500 old tickets overdue and past their last step
    filled it on every poll, and no newer ticket got its reminder or warning again.
    """
    earliest = now - timedelta(hours=settings.unack_after_h)
    done = 0
    after: tuple[datetime, int] | None = None
    while True:
        rows = conn.execute(
            """SELECT t.due_at, t.id FROM tickets AS t
               WHERE t.status = ANY(%(unresolved)s)
                 AND (t.due_at - make_interval(secs => %(before)s) <= %(now)s
                      OR (t.acknowledged_at IS NULL
                          AND coalesce(t.reopened_at, t.opened_at) <= %(earliest)s))
                 AND NOT (
                     EXISTS (SELECT 1 FROM escalation_steps AS e
                             WHERE e.ticket_id = t.id AND e.cycle = t.reopened_count
                               AND e.step = CASE WHEN t.tier = 1 THEN 'red_card'
                                                 ELSE 'regulator' END)
                     AND (t.acknowledged_at IS NOT NULL
                          OR EXISTS (SELECT 1 FROM escalation_steps AS e
                                     WHERE e.ticket_id = t.id AND e.cycle = t.reopened_count
                                       AND e.step = 'director')))
                 AND (%(after_due)s::timestamptz IS NULL
                      OR (t.due_at, t.id) > (%(after_due)s::timestamptz, %(after_id)s::bigint))
               ORDER BY t.due_at, t.id LIMIT %(limit)s""",
            {
                "unresolved": list(_UNRESOLVED),
                "before": settings.reminder_before_h * 3600,
                "now": now,
                "earliest": earliest,
                "limit": limit,
                "after_due": after[0] if after else None,
                "after_id": after[1] if after else None,
            },
        ).fetchall()
        for _due, ticket_id in rows:
            done += _escalate_ticket(conn, int(ticket_id), now=now, settings=settings)
        if len(rows) < limit:
            return done
        after = (rows[-1][0], int(rows[-1][1]))


def _escalate_ticket(conn: Conn, ticket_id: int, *, now: datetime, settings: ApiSettings) -> int:
    """Do the due, not yet recorded steps of one ticket in one transaction."""
    done = 0
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        ticket = cur.execute(
            """SELECT id, ticket_no, site_id, status, tier, opened_at, reopened_at, due_at,
                      acknowledged_at, reopened_count, escalation_level
               FROM tickets WHERE id = %s FOR UPDATE SKIP LOCKED""",
            (ticket_id,),
        ).fetchone()
        if ticket is None:
            return 0  # another worker holds it right now; it will do the steps
        cycle = int(ticket["reopened_count"])
        for name, due_at in due_steps(ticket, now=now, settings=settings):
            claimed = cur.execute(
                """INSERT INTO escalation_steps (ticket_id, cycle, step, due_at, done_at)
                   VALUES (%s, %s, %s, %s, %s)
                   ON CONFLICT (ticket_id, cycle, step) DO NOTHING RETURNING step""",
                (ticket_id, cycle, name, due_at, now),
            ).fetchone()
            if claimed is None:
                continue
            _perform(
                conn, ticket, _BY_NAME[name], due_at=due_at, cycle=cycle, now=now, settings=settings
            )
            done += 1
    return done


def _perform(
    conn: Conn,
    ticket: dict[str, Any],
    step: StepRule,
    *,
    due_at: datetime,
    cycle: int,
    now: datetime,
    settings: ApiSettings,
) -> None:
    """Raise the level (and card), write the timeline entry, queue the notices."""
    ticket_id = int(ticket["id"])
    ESCALATION_STEPS.labels(step.name).inc()
    if step.name == "warning":  # the deadline passed without rectification
        SLA_BREACHES.labels(str(ticket["tier"])).inc()
    conn.execute(
        """UPDATE tickets SET escalation_level = greatest(escalation_level, %s),
               card = CASE WHEN %s::text = 'red' THEN 'red'
                           WHEN %s::text = 'yellow' AND card IS NULL THEN 'yellow'
                           ELSE card END
           WHERE id = %s""",
        (step.level, step.card, step.card, ticket_id),
    )
    conn.execute(
        "INSERT INTO ticket_events (ticket_id, at, actor, kind, data) "
        "VALUES (%s, %s, 'system', %s, %s)",
        (
            ticket_id,
            now,
            f"escalation_{step.name}",
            Jsonb(
                {
                    "step": step.name,
                    "cycle": cycle,
                    "due_at": due_at.isoformat(),
                    "level": step.level,
                }
            ),
        ),
    )
    facts = load_facts(conn, ticket_id, settings=settings)
    n = enqueue_for_roles(
        conn,
        facts=facts,
        roles=step.roles,
        key=f"step:{cycle}:{step.name}",
        build=lambda link: ticket_event(facts, step.name, ack_link=link),
        now=now,
        settings=settings,
        with_ack_link=step.ack_link,
    )
    conn.execute(
        "UPDATE escalation_steps SET notified = %s "
        "WHERE ticket_id = %s AND cycle = %s AND step = %s",
        (n, ticket_id, cycle, step.name),
    )
    logger.info(
        "ticket %s: escalation %s (due %s), %d notice(s)",
        ticket["ticket_no"],
        step.name,
        due_at.isoformat(),
        n,
        extra={"ticket_id": ticket_id, "site_id": ticket["site_id"]},
    )
