"""Ticket queries: list with filters, and one ticket with its timeline."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api.auth.scope import SiteScope
from api.schemas import (
    TicketDetailPublic,
    TicketEventPublic,
    TicketPolicyPublic,
    TicketPublic,
    TicketsPublic,
    TicketStatus,
)

Conn = psycopg.Connection[Any]

_COLUMNS = """
t.id, t.ticket_no, t.site_id, t.source, t.rule, t.subject, t.tier, t.status, t.title,
t.opened_at, t.due_at, t.acknowledged_at, t.closed_at, t.escalation_level, t.occurrences,
t.last_occurrence_at, t.close_proposed_at, t.details,
t.rectified_at, t.rectified_by, t.verified_by,
CASE WHEN t.verified_by IS NOT NULL THEN t.closed_at END AS verified_at,
t.rejected_at, t.reopened_count, t.reopened_at, t.card,
(t.status <> 'closed' AND t.due_at < now()) AS overdue
"""

COUNT_CAP = 10_000
"""Lists count matches exactly up to this many; past it ``count`` is the planner's estimate."""

# Only the filters given go into the SQL: each query gets a plan for its own filters
# (an "IS NULL OR" for every absent filter hides the indexes from a generic plan).
_FILTERS = {
    "site": "t.site_id = %(site)s",
    "status": "t.status = %(status)s",
    "rule": "t.rule = %(rule)s",
    "tier": "t.tier = %(tier)s",
    "opened_from": "t.opened_at >= %(opened_from)s",
}


def list_tickets(
    *,
    conn: Conn,
    scope: SiteScope,
    site_id: str | None,
    status: TicketStatus | None,
    rule: str | None,
    tier: int | None,
    limit: int,
    offset: int,
    opened_from: datetime | None = None,
) -> TicketsPublic:
    """One page of tickets matching the filters, newest opened first, with the total.

    The total is exact up to ``COUNT_CAP`` matches; past that it is PostgreSQL's row
    estimate (never below the cap) and ``count_is_estimate`` is true, so a page of a
    100,000-ticket region costs a page, not a count of every row.
    """
    given: dict[str, object] = {
        "site": site_id,
        "status": status.value if status else None,
        "rule": rule,
        "tier": tier,
        "opened_from": opened_from,
    }
    params: dict[str, object] = {
        **{k: v for k, v in given.items() if v is not None},
        "limit": limit,
        "offset": offset,
        "cap": COUNT_CAP + 1,
    }
    conditions = [_FILTERS[k] for k, v in given.items() if v is not None]
    if not scope.all_sites:
        conditions.append("t.site_id = ANY(%(scope_sites)s)")
        params["scope_sites"] = list(scope.site_ids)
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    # The page and the capped count go in one pipeline: one round trip to the server
    # instead of two (under load each round trip also waits for a turn on the CPU).
    with conn.pipeline(), conn.cursor(row_factory=dict_row) as cur, conn.cursor() as count:
        cur.execute(
            f"SELECT {_COLUMNS} FROM tickets t {where} "
            "ORDER BY t.opened_at DESC, t.id DESC LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )
        count.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM tickets t {where} LIMIT %(cap)s) m", params
        )
        rows = cur.fetchall()
        counted = count.fetchone()
    if offset == 0 and len(rows) < limit:
        total, estimate = len(rows), False  # the whole answer is on this page
    else:
        total = int(counted[0]) if counted else 0
        estimate = total > COUNT_CAP
        if estimate:
            matching = f"SELECT 1 FROM tickets t {where}"
            total = max(total, _estimated_rows(conn, matching, params))
    return TicketsPublic(
        data=[TicketPublic.model_validate(r) for r in rows],
        count=total,
        count_is_estimate=estimate,
        limit=limit,
        offset=offset,
    )


ESTIMATE_TTL_S = 30.0
"""How long a planner estimate is reused for the same filters (it changes only on ANALYZE)."""

_ESTIMATES: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()
_ESTIMATES_MAX = 512
_ESTIMATES_LOCK = threading.Lock()


def _estimated_rows(conn: Conn, query: str, params: dict[str, object]) -> int:
    """PostgreSQL's estimate of the rows ``query`` returns (planning only, no execution).

    The same query and filters within ``ESTIMATE_TTL_S`` reuse the last estimate: planner
    statistics move only when the table is analysed, and a list past ``COUNT_CAP``
    matches would otherwise pay a third round trip to the server on every page.
    """
    key = (
        query,
        repr(sorted((k, repr(v)) for k, v in params.items() if k not in ("limit", "offset"))),
    )
    now = time.monotonic()
    with _ESTIMATES_LOCK:
        hit = _ESTIMATES.get(key)
        if hit is not None and hit[0] > now:
            _ESTIMATES.move_to_end(key)
            return hit[1]
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", params, prepare=False).fetchone()
    if row is None:
        return 0
    plan = row[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    rows = int(plan[0]["Plan"]["Plan Rows"])
    with _ESTIMATES_LOCK:
        _ESTIMATES[key] = (now + ESTIMATE_TTL_S, rows)
        _ESTIMATES.move_to_end(key)
        while len(_ESTIMATES) > _ESTIMATES_MAX:
            _ESTIMATES.popitem(last=False)
    return rows


def get_ticket(*, conn: Conn, scope: SiteScope, ticket_id: int) -> TicketDetailPublic | None:
    """One ticket with its events (oldest first) and finding ids, or None (also out of scope)."""
    # Four reads in one pipeline: one round trip. The timeline, findings and policy of a
    # ticket outside the scope are read too but never returned (the ticket row decides).
    with (
        conn.pipeline(),
        conn.cursor(row_factory=dict_row) as cur,
        conn.cursor(row_factory=dict_row) as events_cur,
        conn.cursor(row_factory=dict_row) as findings_cur,
        conn.cursor(row_factory=dict_row) as policy_cur,
    ):
        cur.execute(
            f"SELECT {_COLUMNS} FROM tickets t WHERE t.id = %(id)s AND "
            + scope.clause("t.site_id"),
            {"id": ticket_id, **scope.params()},
        )
        events_cur.execute(
            "SELECT id, at, actor, kind, note, data FROM ticket_events "
            "WHERE ticket_id = %s ORDER BY id",
            (ticket_id,),
        )
        findings_cur.execute(
            "SELECT id FROM findings WHERE ticket_id = %s ORDER BY id", (ticket_id,)
        )
        policy_cur.execute(
            """SELECT p.id, p.insurer, p.policy_no, p.starts_on, p.ends_on
               FROM ticket_policies tp JOIN policies p ON p.id = tp.policy_id
               WHERE tp.ticket_id = %s""",
            (ticket_id,),
        )
        ticket = cur.fetchone()
        events = events_cur.fetchall()
        findings = findings_cur.fetchall()
        policy = policy_cur.fetchone()
    if ticket is None:
        return None
    return TicketDetailPublic.model_validate(
        {
            **ticket,
            "events": [TicketEventPublic.model_validate(e) for e in events],
            "finding_ids": [int(f["id"]) for f in findings],
            "policy": TicketPolicyPublic.model_validate(policy) if policy else None,
        }
    )
