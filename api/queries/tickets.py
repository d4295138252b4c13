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
    TicketSource,
    TicketsPublic,
    TicketStatus,
)
from api.services.insurance_sql import own_policy_sql
from api.services.ticket_timeline import TIMELINE_SQL
from bkcommon.localtime import region_zone_name

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
    "source": "t.source = %(source)s",
    "opened_from": "t.opened_at >= %(opened_from)s",
}
_OPEN = "t.status <> 'closed'"
_OVERDUE = "(t.status <> 'closed' AND coalesce(t.due_at < now(), false))"


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
    source: TicketSource | None = None,
    closed: bool | None = None,
    overdue: bool | None = None,
) -> TicketsPublic:
    """One page of tickets matching the filters, newest opened first, with the total.

    ``closed`` false keeps the tickets still open in any state (open, acknowledged,
    rectified, rejected), true only the closed ones; ``overdue`` true keeps the tickets
    past their deadline and not closed (the list's ``overdue`` flag), false the others.

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
        "source": source.value if source else None,
    }
    params: dict[str, object] = {
        **{k: v for k, v in given.items() if v is not None},
        "limit": limit,
        "offset": offset,
        "cap": COUNT_CAP + 1,
    }
    conditions = [_FILTERS[k] for k, v in given.items() if v is not None]
    if closed is not None:
        conditions.append(f"NOT {_OPEN}" if closed else _OPEN)
    if overdue is not None:
        conditions.append(_OVERDUE if overdue else f"NOT {_OVERDUE}")
    if not scope.all_sites:
        conditions.append("t.site_id = ANY(%(scope_sites)s::text[])")
        params["scope_sites"] = scope.sites_literal
    where = ("WHERE " + " AND ".join(conditions)) if conditions else ""
    count_key = _count_key(conn, where, params, scope)
    # A later page reuses the count its first page made (see PAGE_COUNT_TTL_S); the
    # first page always counts, so a list opened after a change shows the new total.
    reused = _PAGE_COUNTS.get(count_key) if offset > 0 else None
    # The page and the capped count go in one pipeline: one round trip to the server
    # instead of two (under load each round trip also waits for a turn on the CPU).
    with conn.pipeline(), conn.cursor(row_factory=dict_row) as cur, conn.cursor() as count:
        cur.execute(
            f"SELECT {_COLUMNS} FROM tickets t {where} "
            "ORDER BY t.opened_at DESC, t.id DESC LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )
        if reused is None:
            count.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM tickets t {where} LIMIT %(cap)s) m",
                params,
            )
        rows = cur.fetchall()
        counted = count.fetchone() if reused is None else (reused,)
    if 0 < len(rows) < limit or (offset == 0 and not rows):
        total, estimate = offset + len(rows), False  # the list ends on this page
    else:
        if reused is None and counted:
            _PAGE_COUNTS.put(count_key, int(counted[0]))
        total = int(counted[0]) if counted else 0
        estimate = total > COUNT_CAP
        if estimate:
            matching = f"SELECT 1 FROM tickets t {where}"
            total = max(total, _estimated_rows(conn, matching, params, scope))
    return TicketsPublic(
        data=[TicketPublic.model_validate(r) for r in rows],
        count=total,
        count_is_estimate=estimate,
        limit=limit,
        offset=offset,
    )


PAGE_COUNT_TTL_S = 15.0
"""How long a page after the first reuses the capped count of the same filters and scope.

Counting up to ``COUNT_CAP`` matches costs PostgreSQL 2-6 ms (an index scan of up to
10,001 entries), several times the page itself; someone paging through a list already
saw the total on its first page, and offset pages shift anyway when tickets arrive, so a
total at most this old on pages 2.. is what they expect. Page 1 always counts afresh.
"""


class _TtlCache:
    """A small, thread-safe map whose entries expire (the API serves from worker threads)."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._items: OrderedDict[tuple[str, ...], tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> int | None:
        """The value stored under ``key`` if it has not expired."""
        with self._lock:
            hit = self._items.get(key)
            if hit is None or hit[0] <= time.monotonic():
                return None
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key: tuple[str, ...], value: int) -> None:
        """Store ``value`` for the TTL, dropping the least recently used past the bound."""
        with self._lock:
            self._items[key] = (time.monotonic() + self._ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._items.clear()


_PAGE_COUNTS = _TtlCache(PAGE_COUNT_TTL_S, 1024)


def _count_key(
    conn: Conn, where: str, params: dict[str, object], scope: SiteScope
) -> tuple[str, ...]:
    """The database, filters and scope a count depends on (not the page's limit and offset);
    the scope by its digest, so a region of thousands of canteens keys in 32 characters."""
    return (
        conn.info.dbname,
        where,
        scope.sites_digest,
        *(
            f"{k}={v}"
            for k, v in sorted(params.items())
            if k not in ("limit", "offset", "scope_sites")
        ),
    )


ESTIMATE_TTL_S = 30.0
"""How long a planner estimate is reused for the same filters (it changes only on ANALYZE)."""

_ESTIMATES = _TtlCache(ESTIMATE_TTL_S, 512)


def _estimated_rows(conn: Conn, query: str, params: dict[str, object], scope: SiteScope) -> int:
    """PostgreSQL's estimate of the rows ``query`` returns (planning only, no execution).

    The same query and filters within ``ESTIMATE_TTL_S`` reuse the last estimate: planner
    statistics move only when the table is analysed, and a list past ``COUNT_CAP``
    matches would otherwise pay a third round trip to the server on every page.
    """
    key = _count_key(conn, query, params, scope)
    hit = _ESTIMATES.get(key)
    if hit is not None:
        return hit
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", params, prepare=False).fetchone()
    if row is None:
        return 0
    plan = row[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    rows = int(plan[0]["Plan"]["Plan Rows"])
    _ESTIMATES.put(key, rows)
    return rows


def get_ticket(
    *, conn: Conn, scope: SiteScope, ticket_id: int, insurer: str | None = None
) -> TicketDetailPublic | None:
    """One ticket with its events (oldest first) and finding ids, or None (also out of scope);
    ``insurer``: the policy shown is that insurer's own (an insurer's account)."""
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
        events_cur.execute(TIMELINE_SQL, (ticket_id,))
        findings_cur.execute(
            "SELECT id FROM findings WHERE ticket_id = %s ORDER BY id", (ticket_id,)
        )
        # an insurer reads its own policy of the canteen, never a rival's on a canteen both
        # cover (bk_policy_in_force answers the newest of them)
        in_force = (
            "bk_policy_in_force(t.site_id, t.opened_at, %(tz)s)"
            if insurer is None
            else own_policy_sql("t.site_id", "t.opened_at")
        )
        policy_cur.execute(
            f"""SELECT p.id, p.insurer, p.policy_no, p.starts_on, p.ends_on
               FROM tickets t JOIN policies p ON p.id = {in_force}
               WHERE t.id = %(id)s""",
            {"tz": region_zone_name(), "id": ticket_id, "insurer": insurer},
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
