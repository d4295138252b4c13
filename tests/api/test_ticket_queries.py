"""Ticket list and detail reads against a real PostgreSQL: one round trip each, same answers.

The list sends its page and its capped count in one pipeline, the detail its four reads;
these tests pin what the answers must still be: the scope decides (a ticket outside it is
absent, its timeline never returned), counts are exact up to the cap and estimated past
it, an estimate is reused for the same filters only within its time to live, and a page
after the first reuses its first page's count for a short while (page 1 always counts).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from api.auth.scope import SiteScope
from api.queries import tickets as q
from api.schemas import TicketSource
from api.services.labels import SOURCE_LABELS
from tests.api.conftest import T0, insert_finding

pytestmark = pytest.mark.usefixtures("registry")

ALL = SiteScope.everything()


def _add_tickets(
    conn: psycopg.Connection[Any], n: int, *, rule: str, site: str = "school-001", first: int = 0
) -> None:
    conn.execute(
        """INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier, status, title,
                                opened_at, due_at, closed_at, last_occurrence_at)
           SELECT 'ZG-Q-' || %(rule)s || '-' || i, %(site)s, 'alarm', %(rule)s, 'subj-' || i,
                  2, 'closed', 'q ' || i, %(t0)s - i * interval '1 minute',
                  %(t0)s + interval '72 hours', %(t0)s, %(t0)s - i * interval '1 minute'
           FROM generate_series(%(first)s, %(first)s + %(n)s - 1) i""",
        {"rule": rule, "site": site, "t0": T0, "n": n, "first": first},
    )


@pytest.fixture
def no_cached_estimates() -> Iterator[None]:
    q._ESTIMATES.clear()
    q._PAGE_COUNTS.clear()
    yield
    q._ESTIMATES.clear()
    q._PAGE_COUNTS.clear()


def test_detail_returns_timeline_and_findings_in_scope_and_nothing_outside(
    conn: psycopg.Connection[Any],
) -> None:
    _add_tickets(conn, 1, rule="temp_high")
    (tid,) = conn.execute("SELECT id FROM tickets WHERE rule = 'temp_high'").fetchone() or (0,)
    for kind in ("opened", "acknowledged"):
        conn.execute(
            "INSERT INTO ticket_events (ticket_id, at, actor, kind) VALUES (%s, %s, 'x', %s)",
            (tid, T0, kind),
        )
    f1 = insert_finding(conn, key="q:1", notify=False)
    f2 = insert_finding(conn, key="q:2", notify=False)
    conn.execute("UPDATE findings SET ticket_id = %s WHERE id IN (%s, %s)", (tid, f1, f2))

    mine = q.get_ticket(conn=conn, scope=SiteScope(False, ("school-001",)), ticket_id=tid)
    assert mine is not None
    assert mine.id == tid
    assert mine.site_id == "school-001"
    assert [e.kind for e in mine.events] == ["opened", "acknowledged"]
    assert mine.finding_ids == sorted([f1, f2])
    assert mine.policy is None
    assert q.get_ticket(conn=conn, scope=SiteScope(False, ("school-002",)), ticket_id=tid) is None
    assert q.get_ticket(conn=conn, scope=ALL, ticket_id=tid + 1000) is None
    # the connection is usable afterwards (the pipeline ended in a clean state)
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_list_counts_exactly_on_every_page(conn: psycopg.Connection[Any]) -> None:
    _add_tickets(conn, 7, rule="pest")
    _add_tickets(conn, 2, rule="no_mask", site="school-002")

    def page(**kw: Any) -> tuple[list[int], int, bool]:
        args: dict[str, Any] = {"site_id": None, "status": None, "rule": None, "tier": None,
                                "limit": 50, "offset": 0, **kw}  # fmt: skip
        p = q.list_tickets(conn=conn, scope=ALL, **args)
        return [t.id for t in p.data], p.count, p.count_is_estimate

    ids, count, est = page(rule="pest", limit=3)
    assert (len(ids), count, est) == (3, 7, False)
    ids2, count, _ = page(rule="pest", limit=3, offset=3)
    assert (len(ids2), count) == (3, 7)
    assert not set(ids) & set(ids2)
    assert page(rule="pest", offset=20)[:2] == ([], 7)  # past the end: still the total
    assert page(rule="pest")[1:] == (7, False)  # one short page: no count needed
    assert page(site_id="school-002")[1] == 2
    reg = SiteScope(False, ("school-002",))
    assert q.list_tickets(conn=conn, scope=reg, site_id=None, status=None, rule=None,
                          tier=None, limit=1, offset=0).count == 2  # fmt: skip


def test_past_the_cap_the_estimate_is_reused_only_within_its_ttl(
    conn: psycopg.Connection[Any], no_cached_estimates: None
) -> None:
    _add_tickets(conn, q.COUNT_CAP + 500, rule="temp_low")
    conn.execute("ANALYZE tickets")

    def listing() -> tuple[int, bool]:
        p = q.list_tickets(conn=conn, scope=ALL, site_id=None, status=None, rule="temp_low",
                           tier=None, limit=10, offset=30)  # fmt: skip
        assert len(p.data) == 10
        return p.count, p.count_is_estimate

    first, estimated = listing()
    assert estimated
    assert first > q.COUNT_CAP
    _add_tickets(conn, 20_000, rule="temp_low", first=q.COUNT_CAP + 500)
    conn.execute("ANALYZE tickets")
    assert listing() == (first, True)  # within the TTL: the same estimate, no planning
    q._ESTIMATES.clear()  # as when the TTL has run out
    later, estimated = listing()
    assert estimated
    assert later > first + 10_000


def test_later_pages_reuse_the_first_pages_count_and_page_one_always_counts(
    conn: psycopg.Connection[Any], no_cached_estimates: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_tickets(conn, 120, rule="temp_low")
    reg = SiteScope(False, ("school-001", 'odd"id'))

    def total(offset: int, scope: SiteScope = ALL) -> tuple[int, bool]:
        p = q.list_tickets(conn=conn, scope=scope, site_id=None, status=None, rule="temp_low",
                           tier=None, limit=50, offset=offset)  # fmt: skip
        return p.count, p.count_is_estimate

    assert total(0) == (120, False)
    assert total(0, reg) == (120, False)  # the scope literal reaches the same rows
    _add_tickets(conn, 30, rule="temp_low", first=500)
    assert total(50) == (120, False)  # page 2 within the TTL: the count page 1 made
    assert total(120) == (150, False)  # the list ends on this page: its own exact total
    assert total(0) == (150, False)  # page 1 counts afresh ...
    assert total(50) == (150, False)  # ... and later pages take that count
    # Another scope (or filter, or database) never takes this one's count.
    other = SiteScope(False, ("school-002",))
    assert total(50, other) == (0, False)
    # Past the time to live a later page counts again.
    _add_tickets(conn, 60, rule="temp_low", first=900)
    q._PAGE_COUNTS.clear()  # as when the TTL has run out
    assert total(50) == (210, False)


def test_list_filters_by_source(conn: psycopg.Connection[Any]) -> None:
    _add_tickets(conn, 3, rule="temp_high")  # opened by device alarms
    conn.execute(
        """INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier, status, title,
                                opened_at, due_at, last_occurrence_at)
           VALUES ('ZG-Q-V-1', 'school-001', 'violation', 'no_mask', 'cam-1', 2, 'open', 'v',
                   %(t0)s, %(t0)s + interval '1 day', %(t0)s)""",
        {"t0": T0},
    )

    def listing(source: TicketSource | None) -> list[str]:
        p = q.list_tickets(conn=conn, scope=ALL, site_id=None, status=None, rule=None,
                           tier=None, limit=50, offset=0, source=source)  # fmt: skip
        assert p.count == len(p.data)
        return sorted(t.source for t in p.data)

    assert listing(TicketSource.VIOLATION) == ["violation"]
    assert listing(TicketSource.ALARM) == ["alarm"] * 3
    assert listing(TicketSource.COMPLAINT) == []
    assert listing(None) == ["alarm"] * 3 + ["violation"]


def test_list_filters_open_and_overdue_in_sql(conn: psycopg.Connection[Any]) -> None:
    _add_tickets(conn, 4, rule="pest")  # closed
    conn.execute(
        """INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier, status, title,
                                opened_at, due_at, last_occurrence_at)
           VALUES ('ZG-Q-LATE', 'school-001', 'alarm', 'temp_high', 'a', 2, 'acknowledged', 'l',
                   now() - interval '3 days', now() - interval '1 day', now()),
                  ('ZG-Q-DUE', 'school-001', 'alarm', 'temp_high', 'b', 2, 'open', 'd',
                   now() - interval '1 hour', now() + interval '1 day', now())""",
    )

    def numbers(**kw: Any) -> tuple[list[str], int]:
        p = q.list_tickets(conn=conn, scope=ALL, site_id="school-001", status=None, rule=None,
                           tier=None, limit=2, offset=0, **kw)  # fmt: skip
        return sorted(t.ticket_no for t in p.data), p.count

    assert numbers(closed=False) == (["ZG-Q-DUE", "ZG-Q-LATE"], 2)
    assert numbers(closed=True)[1] == 4
    assert numbers(overdue=True) == (["ZG-Q-LATE"], 1)
    assert numbers(overdue=False)[1] == 5  # the closed ones and the one still in time
    assert numbers(closed=False, overdue=False) == (["ZG-Q-DUE"], 1)


def test_ticket_sources_are_one_list_with_the_database_and_the_words(
    conn: psycopg.Connection[Any],
) -> None:
    row = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'tickets_source_check'"
    ).fetchone()
    assert row is not None
    allowed = set(re.findall(r"'(\w+)'::text", row[0]))
    assert allowed == {s.value for s in TicketSource} == set(SOURCE_LABELS)
