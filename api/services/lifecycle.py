"""The life of a rectification ticket: one transition table, one timeline entry per change.

```
open ──acknowledge──▶ acknowledged ──rectify (note + photo)──▶ rectified ──verify──▶ closed
  │                                                   ▲            │                  │
  └──────rectify───────────────────────────────────────┤       reject (reason)         │
                                         rejected ─────┘◀──────────┘                  │
open ◀──────────────────────────── reopen (reason) ─────────────────────────────────────┘
any state but closed ──close (reason; regulator) / confirm_close (the data proved it)──▶ closed
```

``decide`` is pure: (status, action, role) → the transition or an error saying what is
allowed. ``apply_action`` runs it on a locked row and writes the ticket change, its
``ticket_events`` entry and the notices in one transaction. Nothing is ever deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import uuid4

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.auth.scope import Role, SiteScope
from api.services.deadlines import due_after, resolve_deadline
from api.services.notify.message import ticket_event
from api.services.notify.routing import enqueue_for_roles, load_facts
from api.services.tickets import OPENING_KINDS, Finding, open_or_add
from api.settings import ApiSettings
from bkcommon.errors import RequestError

logger = logging.getLogger(__name__)

Conn = psycopg.Connection[Any]


class Action(StrEnum):
    """What a person can do to a ticket."""

    ACKNOWLEDGE = "acknowledge"
    RECTIFY = "rectify"
    VERIFY = "verify"
    REJECT = "reject"
    REOPEN = "reopen"
    CLOSE = "close"
    CONFIRM_CLOSE = "confirm_close"


_SITE = frozenset({Role.OFFICER, Role.DIRECTOR, Role.ADMIN})
_CHECK = frozenset({Role.DIRECTOR, Role.REGULATOR, Role.INSPECTOR, Role.ADMIN})
_ANYONE = frozenset({Role.OFFICER, Role.DIRECTOR, Role.REGULATOR, Role.ADMIN})
_AUTHORITY = frozenset({Role.REGULATOR, Role.ADMIN})
_NOT_CLOSED = ("open", "acknowledged", "rectified", "rejected")


@dataclass(frozen=True, slots=True)
class Transition:
    """Where an action leads, who may take it, what it must carry, and its timeline name."""

    to: str
    roles: frozenset[Role]
    event: str
    needs_note: bool = False


TRANSITIONS: dict[tuple[str, Action], Transition] = {
    ("open", Action.ACKNOWLEDGE): Transition(
        "acknowledged", _SITE | {Role.REGULATOR}, "acknowledged"
    ),
    ("open", Action.RECTIFY): Transition("rectified", _SITE, "rectified", needs_note=True),
    ("acknowledged", Action.RECTIFY): Transition("rectified", _SITE, "rectified", needs_note=True),
    ("rejected", Action.RECTIFY): Transition("rectified", _SITE, "rectified", needs_note=True),
    ("rectified", Action.VERIFY): Transition("closed", _CHECK, "verified"),
    ("rectified", Action.REJECT): Transition("rejected", _CHECK, "rejected", needs_note=True),
    ("closed", Action.REOPEN): Transition("open", _CHECK, "reopened", needs_note=True),
    **{(s, Action.CLOSE): Transition("closed", _AUTHORITY, "closed", True) for s in _NOT_CLOSED},
    **{
        (s, Action.CONFIRM_CLOSE): Transition("closed", _ANYONE, "close_confirmed")
        for s in _NOT_CLOSED
    },
}
"""(status, action) → transition: the whole state machine."""


class LifecycleError(RequestError):
    """Base of the errors a ticket action answers with (the app maps them to HTTP)."""

    status_code = 400


class TicketNotFoundError(LifecycleError):
    """No such ticket in the caller's scope."""

    status_code = 404


class TransitionNotAllowedError(LifecycleError):
    """The action does not apply to the ticket's current state."""

    status_code = 409


class RoleNotAllowedError(LifecycleError):
    """The caller's role may not take this action."""

    status_code = 403


class MissingInputError(LifecycleError):
    """A reason, a note or a photo is missing."""

    status_code = 422


def allowed_actions(status: str, role: Role) -> list[Action]:
    """Actions ``role`` may take on a ticket in ``status`` (for the console's buttons)."""
    return [a for (s, a), t in TRANSITIONS.items() if s == status and role in t.roles]


def decide(status: str, action: Action, role: Role) -> Transition:
    """The transition of ``action`` from ``status`` for ``role``, or an error naming what is.

    Example:
        >>> decide("rectified", Action.VERIFY, Role.DIRECTOR).to
        'closed'
        >>> decide("open", Action.VERIFY, Role.DIRECTOR)
        Traceback (most recent call last):
        ...
        api.services.lifecycle.TransitionNotAllowedError: cannot verify a ticket that is open; ...
    """
    t = TRANSITIONS.get((status, action))
    if t is None:
        allowed = [a.value for (s, a) in TRANSITIONS if s == status]
        raise TransitionNotAllowedError(
            f"cannot {action.value} a ticket that is {status}; allowed from {status}: "
            + (", ".join(allowed) or "nothing")
        )
    if role not in t.roles:
        raise RoleNotAllowedError(
            f"role {role.value} may not {action.value}; allowed roles: "
            + ", ".join(sorted(r.value for r in t.roles))
        )
    return t


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: the timeline's ``actor`` text and the role that decides what they may do."""

    name: str
    role: Role
    user_id: str | None = None
    person_id: str | None = None


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What an action did."""

    ticket_id: int
    status: str
    event_id: int
    previous: str


_NOTIFY_ON: dict[str, tuple[str, ...]] = {
    "rectified": ("director",),
    "rejected": ("officer",),
    "reopened": ("officer",),
}
"""Timeline event → roles of the site told about it."""


def apply_action(
    conn: Conn,
    *,
    ticket_id: int,
    action: Action,
    actor: Actor,
    scope: SiteScope,
    now: datetime,
    settings: ApiSettings,
    note: str = "",
    evidence: list[str] | None = None,
) -> ActionResult:
    """Take ``action`` on a ticket in one transaction; raise a LifecycleError when refused.

    ``evidence`` (rectify) names photos uploaded to the ticket by sha256; when empty, the
    photos uploaded since the last rectification are attached. Rectify needs at least one.
    """
    note = note.strip()
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"""SELECT id, site_id, rule, tier, status, close_proposed_at, ticket_no
                FROM tickets t WHERE id = %(id)s AND {scope.clause("t.site_id")}
                FOR UPDATE""",
            {"id": ticket_id, **scope.params()},
        ).fetchone()
        if row is None:
            raise TicketNotFoundError(f"ticket {ticket_id} not found")
        status = str(row["status"])
        t = decide(status, action, actor.role)
        if t.needs_note and not note:
            raise MissingInputError(f"{action.value} needs a note saying why (or what was done)")
        if action is Action.CONFIRM_CLOSE:
            _check_close_proposal(row["close_proposed_at"], now=now, settings=settings)
        data: dict[str, Any] = {"from": status, "to": t.to, "role": actor.role.value}
        if actor.user_id:
            data["user_id"] = actor.user_id
        if actor.person_id:
            data["person_id"] = actor.person_id
        ev = cur.execute("SELECT nextval(pg_get_serial_sequence('ticket_events', 'id')) AS id")
        event_id = int(ev.fetchone()["id"])  # type: ignore[index]
        if action is Action.RECTIFY:
            data["evidence"] = _attach_photos(conn, ticket_id, event_id, evidence or [])
        cur.execute(
            "INSERT INTO ticket_events (id, ticket_id, at, actor, kind, note, data) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (event_id, ticket_id, now, actor.name, t.event, note, Jsonb(data)),
        )
        _update_ticket(conn, row, t, action, actor=actor, now=now, settings=settings)
        roles = _NOTIFY_ON.get(t.event)
        if roles:
            facts = load_facts(conn, ticket_id, settings=settings)
            enqueue_for_roles(
                conn,
                facts=facts,
                roles=roles,
                key=f"{t.event}:{event_id}",
                build=lambda link: ticket_event(facts, t.event, note=note, ack_link=link),
                now=now,
                settings=settings,
                # an acknowledge link only where acknowledging is the next step: a rejected
                # rectification is done again in the console, not acknowledged
                with_ack_link=t.event == "reopened",
            )
    logger.info(
        "ticket %s: %s by %s (%s → %s)",
        row["ticket_no"],
        action.value,
        actor.name,
        status,
        t.to,
        extra={"ticket_id": ticket_id, "site_id": row["site_id"]},
    )
    return ActionResult(ticket_id=ticket_id, status=t.to, event_id=event_id, previous=status)


def actions_now(
    status: str,
    role: Role,
    *,
    close_proposed_at: datetime | None,
    now: datetime,
    settings: ApiSettings,
) -> list[Action]:
    """What ``role`` may do to a ticket now: ``allowed_actions`` without ``confirm_close``
    until the data has proposed the close and held for the stable time (the console's
    buttons: one that could only be refused is not offered)."""
    confirmable = close_proposed_at is not None and now >= close_confirmable_from(
        close_proposed_at, settings
    )
    return [
        a for a in allowed_actions(status, role) if a is not Action.CONFIRM_CLOSE or confirmable
    ]


def close_confirmable_from(proposed_at: datetime, settings: ApiSettings) -> datetime:
    """When a close the data proposed may be confirmed: after the stable time in range."""
    return proposed_at + timedelta(minutes=settings.close_stable_min)


def _check_close_proposal(
    proposed_at: datetime | None, *, now: datetime, settings: ApiSettings
) -> None:
    """A close can be confirmed once the data has been back in range for the stable time."""
    if proposed_at is None:
        raise TransitionNotAllowedError(
            "no close was proposed: the data has not shown the fix (use close with a reason)"
        )
    ready = close_confirmable_from(proposed_at, settings)
    if now < ready:
        raise TransitionNotAllowedError(
            f"back in range since {proposed_at.isoformat()}; a close can be confirmed from "
            f"{ready.isoformat()}"
        )


def _attach_photos(conn: Conn, ticket_id: int, event_id: int, shas: list[str]) -> list[str]:
    """Tie photos to the rectification event; at least one is required."""
    if shas:
        rows = conn.execute(
            """UPDATE ticket_evidence SET event_id = %s
               WHERE ticket_id = %s AND kind = 'photo' AND sha256 = ANY(%s)
               RETURNING sha256""",
            (event_id, ticket_id, shas),
        ).fetchall()
        found = {str(r[0]) for r in rows}
        missing = [s for s in shas if s not in found]
        if missing:
            raise MissingInputError(
                f"evidence not uploaded to this ticket: {', '.join(missing)}; "
                "POST it to /tickets/{id}/evidence first"
            )
    else:
        rows = conn.execute(
            """UPDATE ticket_evidence SET event_id = %s
               WHERE ticket_id = %s AND kind = 'photo' AND event_id IS NULL
               RETURNING sha256""",
            (event_id, ticket_id),
        ).fetchall()
    if not rows:
        raise MissingInputError("a rectification needs at least one photo of the fix")
    return sorted(str(r[0]) for r in rows)


def _update_ticket(
    conn: Conn,
    row: dict[str, Any],
    t: Transition,
    action: Action,
    *,
    actor: Actor,
    now: datetime,
    settings: ApiSettings,
) -> None:
    """Write the new state and the columns the action stamps."""
    ticket_id = int(row["id"])
    params: dict[str, Any] = {"id": ticket_id, "to": t.to, "now": now, "actor": actor.name}
    sets = {
        Action.ACKNOWLEDGE: "acknowledged_at = %(now)s",
        Action.RECTIFY: "rectified_at = %(now)s, rectified_by = %(actor)s, "
        "acknowledged_at = coalesce(acknowledged_at, %(now)s)",
        Action.VERIFY: "closed_at = %(now)s, verified_by = %(actor)s",
        Action.REJECT: "rejected_at = %(now)s",
        Action.CLOSE: "closed_at = %(now)s, verified_by = %(actor)s",
        Action.CONFIRM_CLOSE: "closed_at = %(now)s, verified_by = %(actor)s",
        Action.REOPEN: "reopened_count = reopened_count + 1, reopened_at = %(now)s, "
        "acknowledged_at = NULL, closed_at = NULL, close_proposed_at = NULL, "
        "rectified_at = NULL, escalation_level = 0, due_at = %(due)s",
    }[action]
    if action is Action.REOPEN:
        params["due"] = due_after(
            conn,
            now,
            resolve_deadline(
                conn,
                site_id=str(row["site_id"]),
                rule=str(row["rule"]),
                tier=int(row["tier"]),
                settings=settings,
            ),
        )
    try:
        with conn.transaction():
            conn.execute(f"UPDATE tickets SET status = %(to)s, {sets} WHERE id = %(id)s", params)
    except psycopg.errors.UniqueViolation as exc:
        raise TransitionNotAllowedError(
            "another ticket is open for the same site, rule and subject; work on that one"
        ) from exc


def create_manual_ticket(
    conn: Conn,
    *,
    site_id: str,
    rule: str,
    subject: str,
    tier: int,
    note: str,
    actor: Actor,
    scope: SiteScope,
    now: datetime,
    settings: ApiSettings,
) -> tuple[int, bool]:
    """Open a ticket by hand (source ``manual``) through the engine's own path.

    Returns (ticket id, opened); ``opened`` is False when it joined the open ticket of the
    same site, rule and subject as an occurrence.
    """
    if not scope.allows(site_id):
        raise TicketNotFoundError(f"site {site_id} not found")
    if actor.role not in _ANYONE:
        raise RoleNotAllowedError(f"role {actor.role.value} may not open tickets")
    with conn.transaction():
        site = conn.execute("SELECT 1 FROM sites WHERE id = %s", (site_id,)).fetchone()
        if site is None:
            raise TicketNotFoundError(f"site {site_id} not found")
        payload = {"note": note, "created_by": actor.name}
        key = f"manual:{uuid4().hex}"
        row = conn.execute(
            """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier,
                                     occurred_at, payload, created_at)
               VALUES (%s, 'manual', %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (key, site_id, subject, rule, tier, now, Jsonb(payload), now),
        ).fetchone()
        assert row is not None
        finding = Finding(
            id=int(row[0]),
            finding_key=key,
            kind="manual",
            site_id=site_id,
            subject=subject,
            rule=rule,
            tier=tier,
            occurred_at=now,
            payload=payload,
        )
        assert finding.kind in OPENING_KINDS
        outcome = open_or_add(conn, finding, now=now, settings=settings)
        assert outcome.ticket_id is not None
        if outcome.action == "opened":
            conn.execute(
                "UPDATE tickets SET created_by = %s WHERE id = %s", (actor.name, outcome.ticket_id)
            )
        conn.execute(
            "INSERT INTO ticket_events (ticket_id, at, actor, kind, note, data) "
            "VALUES (%s, %s, %s, 'manual_entry', %s, %s)",
            (outcome.ticket_id, now, actor.name, note, Jsonb({"finding_id": finding.id})),
        )
    return outcome.ticket_id, outcome.action == "opened"
