"""The escalation ladder with a controllable clock: each step once, across restarts and workers."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from api.services.deadlines import resolve_deadline, set_deadline_rule
from api.services.escalation import due_steps, run_escalation
from api.services.lifecycle import Action, apply_action
from api.services.tickets import process_findings
from api.settings import ApiSettings
from tests.api.conftest import T0, insert_finding
from tests.api.loop_support import (
    ALL,
    OFFICER,
    REGULATOR,
    loop_registry,
    loop_settings,
    notices,
)

__all__ = ["loop_registry", "loop_settings"]


def _open(conn: psycopg.Connection[Any], settings: ApiSettings, *, tier: int = 2) -> int:
    insert_finding(conn, key=f"alarm:{tier}:raised", tier=tier, notify=False)
    process_findings(conn, now=T0, settings=settings)
    row = conn.execute("SELECT id FROM tickets ORDER BY id DESC LIMIT 1").fetchone()
    assert row is not None
    return int(row[0])


def _steps(conn: psycopg.Connection[Any], tid: int) -> list[str]:
    rows = conn.execute(
        "SELECT step FROM escalation_steps WHERE ticket_id = %s ORDER BY due_at, step", (tid,)
    ).fetchall()
    return [str(r[0]) for r in rows]


def _ticket(conn: psycopg.Connection[Any], tid: int) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT escalation_level, card, due_at FROM tickets WHERE id = %s", (tid,)
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_pure_schedule_from_stored_times(loop_settings: ApiSettings) -> None:
    due = T0 + timedelta(hours=72)
    ticket = {
        "status": "open", "tier": 1, "opened_at": T0, "reopened_at": None,
        "due_at": due, "acknowledged_at": None,
    }  # fmt: skip

    def names(at: datetime, **kw: Any) -> list[str]:
        return [n for n, _ in due_steps({**ticket, **kw}, now=at, settings=loop_settings)]

    assert names(T0 + timedelta(hours=1)) == []
    assert names(T0 + timedelta(hours=2)) == ["director"]
    assert names(T0 + timedelta(hours=2), acknowledged_at=T0) == []
    assert names(due - timedelta(hours=4)) == ["reminder", "director"]
    assert names(due + timedelta(days=6)) == [
        "reminder", "warning", "director", "regulator", "yellow_card",
    ]  # fmt: skip
    assert names(due + timedelta(days=11))[-1] == "red_card"
    assert names(due + timedelta(days=11), tier=2)[-1] == "regulator"  # cards are tier 1 only
    assert names(due + timedelta(days=11), status="rectified") == []  # waiting for verification


@pytest.mark.usefixtures("loop_registry")
def test_ladder_across_the_deadline_each_step_once(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    s = loop_settings
    tid = _open(conn, s, tier=1)
    due = _ticket(conn, tid)[2]
    assert due == T0 + timedelta(hours=s.deadline_tier1_h)

    assert run_escalation(conn, now=T0 + timedelta(hours=1), settings=s) == 0
    assert run_escalation(conn, now=T0 + timedelta(hours=3), settings=s) == 1
    assert _steps(conn, tid) == ["director"]
    assert run_escalation(conn, now=T0 + timedelta(hours=3), settings=s) == 0  # "restart"
    apply_action(
        conn, ticket_id=tid, action=Action.ACKNOWLEDGE, actor=OFFICER, scope=ALL,
        now=T0 + timedelta(hours=4), settings=s,
    )  # fmt: skip
    assert run_escalation(conn, now=due - timedelta(hours=1), settings=s) == 1  # reminder
    assert run_escalation(conn, now=due, settings=s) == 1  # warning at the deadline
    assert _ticket(conn, tid)[:2] == (2 + 1, None)  # level of "director" stays the highest
    assert run_escalation(conn, now=due + timedelta(hours=25), settings=s) == 1  # regulator
    assert run_escalation(conn, now=due + timedelta(days=5, minutes=1), settings=s) == 1
    assert _ticket(conn, tid)[:2] == (5, "yellow")
    assert run_escalation(conn, now=due + timedelta(days=10, minutes=1), settings=s) == 1
    assert _ticket(conn, tid)[:2] == (6, "red")
    assert run_escalation(conn, now=due + timedelta(days=30), settings=s) == 0
    assert _steps(conn, tid) == [
        "director", "reminder", "warning", "regulator", "yellow_card", "red_card",
    ]  # fmt: skip

    sent = list(dict.fromkeys((p, e) for p, e, _ in notices(conn, tid)))  # officer: 2 channels
    assert sent == [
        ("officer-1", "ticket_opened"),
        ("director-1", "ticket_director"),
        ("officer-1", "ticket_reminder"),
        ("director-1", "ticket_warning"),
        ("officer-1", "ticket_warning"),
        ("regulator-1", "ticket_regulator"),
        ("director-1", "ticket_yellow_card"),
        ("regulator-1", "ticket_yellow_card"),
        ("director-1", "ticket_red_card"),
        ("regulator-1", "ticket_red_card"),
    ]
    kinds = conn.execute(
        "SELECT kind FROM ticket_events WHERE ticket_id = %s AND actor = 'system' ORDER BY id",
        (tid,),
    ).fetchall()
    assert [k[0] for k in kinds if k[0].startswith("escalation_")] == [
        "escalation_director", "escalation_reminder", "escalation_warning",
        "escalation_regulator", "escalation_yellow_card", "escalation_red_card",
    ]  # fmt: skip


@pytest.mark.usefixtures("loop_registry")
def test_late_worker_catches_up_without_skipping(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    tid = _open(conn, loop_settings, tier=2)
    due = _ticket(conn, tid)[2]
    # The service was down for two days past the deadline: every due step happens once, now.
    assert run_escalation(conn, now=due + timedelta(days=2), settings=loop_settings) == 4
    assert sorted(_steps(conn, tid)) == ["director", "regulator", "reminder", "warning"]
    assert _ticket(conn, tid)[:2] == (4, None)


@pytest.mark.usefixtures("loop_registry")
def test_concurrent_workers_do_each_step_exactly_once(
    db_url: str, conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    ids = []
    for i in range(12):
        insert_finding(conn, key=f"v{i}", kind="violation", subject=f"cam-{i}", rule="pest",
                       tier=1, notify=False)  # fmt: skip
    process_findings(conn, now=T0, settings=loop_settings)
    ids = [int(r[0]) for r in conn.execute("SELECT id FROM tickets").fetchall()]
    assert len(ids) == 12
    at = T0 + timedelta(days=20)
    barrier = threading.Barrier(4)
    counts: list[int] = []

    def worker() -> None:
        with psycopg.connect(db_url, autocommit=True) as c:
            barrier.wait()
            n = 0
            for _ in range(3):
                n += run_escalation(c, now=at, settings=loop_settings)
            counts.append(n)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Unknown cameras have no people: steps still happen once, notices go to the site's people.
    assert sum(counts) == 12 * 6
    per_ticket = conn.execute(
        "SELECT ticket_id, count(*) FROM escalation_steps GROUP BY ticket_id"
    ).fetchall()
    assert sorted(n for _, n in per_ticket) == [6] * 12
    dup = conn.execute("SELECT count(*) - count(DISTINCT dedupe_key) FROM notifications").fetchone()
    assert dup == (0,)
    events = conn.execute(
        "SELECT count(*) FROM ticket_events WHERE kind LIKE 'escalation_%'"
    ).fetchone()
    assert events == (12 * 6,)


@pytest.mark.usefixtures("loop_registry")
def test_reopen_starts_a_new_cycle(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    s = loop_settings
    tid = _open(conn, s, tier=2)
    due = _ticket(conn, tid)[2]
    assert run_escalation(conn, now=due, settings=s) == 3
    apply_action(conn, ticket_id=tid, action=Action.CLOSE, actor=REGULATOR, scope=ALL,
                 now=due, settings=s, note="fixed on site")  # fmt: skip
    assert run_escalation(conn, now=due + timedelta(days=3), settings=s) == 0  # closed: quiet
    reopened_at = due + timedelta(days=3)
    apply_action(conn, ticket_id=tid, action=Action.REOPEN, actor=REGULATOR, scope=ALL,
                 now=reopened_at, settings=s, note="back again")  # fmt: skip
    new_due = _ticket(conn, tid)[2]
    assert new_due == reopened_at + timedelta(hours=s.deadline_tier2_h)
    assert run_escalation(conn, now=new_due, settings=s) == 3
    cycles = conn.execute(
        "SELECT cycle, count(*) FROM escalation_steps WHERE ticket_id = %s GROUP BY cycle "
        "ORDER BY cycle",
        (tid,),
    ).fetchall()
    assert cycles == [(0, 3), (1, 3)]


@pytest.mark.usefixtures("loop_registry")
def test_deadline_overrides_by_rule_and_region(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    def hours(rule: str, tier: int) -> float:
        d = resolve_deadline(conn, site_id="school-001", rule=rule, tier=tier,
                             settings=loop_settings)  # fmt: skip
        return d.total_seconds() / 3600

    assert hours("no_mask", 2) == loop_settings.deadline_tier2_h
    set_deadline_rule(conn, hours=48, tier=2, region_id="d1")
    assert hours("no_mask", 2) == 48
    set_deadline_rule(conn, hours=12, rule="no_mask")
    assert hours("no_mask", 2) == 12
    set_deadline_rule(conn, hours=6, rule="no_mask", region_id="d1")
    assert hours("no_mask", 2) == 6
    set_deadline_rule(conn, hours=8, rule="no_mask", region_id="d1")  # replaced, not added
    assert hours("no_mask", 2) == 8
    assert hours("pest", 1) == loop_settings.deadline_tier1_h
    insert_finding(conn, key="v-mask", kind="violation", subject="cam-1", rule="no_mask",
                   notify=False)  # fmt: skip
    process_findings(conn, now=T0, settings=loop_settings)
    row = conn.execute("SELECT due_at - opened_at FROM tickets WHERE rule = 'no_mask'").fetchone()
    assert row == (timedelta(hours=8),)


@pytest.mark.usefixtures("loop_registry")
def test_old_tickets_past_their_last_step_do_not_starve_newer_ones(
    conn: psycopg.Connection[Any], loop_settings: ApiSettings
) -> None:
    """Tickets overdue and past their last step stay unresolved for days. With one fixed page
    of the oldest, a page full of them held every newer ticket's reminder back for good."""
    for i in range(3):
        insert_finding(conn, key=f"alarm:old{i}:raised", subject=f"old-{i}", notify=False)
    process_findings(conn, now=T0, settings=loop_settings)
    old = [int(r[0]) for r in conn.execute("SELECT id FROM tickets ORDER BY id")]
    due = _ticket(conn, old[0])[2]
    later = due + timedelta(days=2)
    assert run_escalation(conn, now=later, settings=loop_settings, limit=2) == 3 * 4
    # a new ticket, opened later: its steps must come although the old ones are still open
    insert_finding(conn, key="alarm:new:raised", subject="new-1", occurred_at=later, notify=False)
    process_findings(conn, now=later, settings=loop_settings)
    new = int(conn.execute("SELECT max(id) FROM tickets").fetchone()[0])  # type: ignore[index]
    new_due = _ticket(conn, new)[2]
    assert run_escalation(conn, now=new_due, settings=loop_settings, limit=2) >= 2
    assert {"reminder", "warning"} <= set(_steps(conn, new))
    assert all(len(_steps(conn, t)) == 4 for t in old)
