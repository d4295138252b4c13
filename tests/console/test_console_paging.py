"""Every list of the console reaches every record: past a page, a pager (``?page=N``) leads
on, newest first for history and oldest first for the review queue, and a count said is the
true count (the site's open tickets, the overdue ledger past 10,000 tickets)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import Console
from tests.console.test_console_browser import find
from tests.console.test_console_pages import sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


@contextmanager
def quiet(conn: psycopg.Connection[Any], *tables: str) -> Iterator[None]:
    """Bulk rows without a live notice each: the tables' own triggers are off meanwhile (the
    tables' owner may do that; ``session_replication_role`` would need a superuser)."""
    for table in tables:
        conn.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(sql.Identifier(table)))
    try:
        yield
    finally:
        for table in tables:
            conn.execute(
                sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(sql.Identifier(table))
            )


def follow(b: WebDriver, older: str, target: str, clicks: int = 12) -> None:
    """Click the ``older`` (or next) link until ``target`` shows, as a person would."""
    for _ in range(clicks):
        if b.find_elements(By.CSS_SELECTOR, target):
            break
        find(b, older).click()
        time.sleep(0.8)
    assert b.find_elements(By.CSS_SELECTOR, target), target


def test_every_rapid_test_is_reachable(module_console: Console, module_browser: WebDriver) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO rapid_tests (site_id, sample_no, product, item, method, result,
                                                 tester, tested_at)
                        SELECT 'east-1', 'PG' || g, '青菜', 'nitrite', '速测卡法', 'pass', '张检',
                               now() - g * interval '1 hour'
                        FROM generate_series(1, 230) g""")
    sign_in_as(b, c, "reg-east", "/console/rapid-tests")
    find(b, "#rt-tests tr[data-sample='PG1']")  # the newest first
    follow(b, "#rt-tests-older", "#rt-tests tr[data-sample='PG230']")
    assert "page=" in b.current_url
    b.refresh()  # a reload keeps the page
    find(b, "#rt-tests tr[data-sample='PG230']")


def test_every_pending_capture_is_reachable_oldest_first(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        with quiet(conn, "findings", "capture_reviews"):
            conn.execute("""WITH f AS (
                              INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier,
                                                    occurred_at, processed_at)
                              SELECT 'pg-' || g, 'violation', 'east-1', 'cam-e1', 'no_chef_hat', 2,
                                     now(), now()
                              FROM generate_series(1, 230) g RETURNING id, finding_key)
                            INSERT INTO capture_reviews (finding_id, event_id, site_id, camera_id,
                                                     rule)
                            SELECT id, 'ev-' || finding_key, 'east-1', 'cam-e1', 'no_chef_hat'
                            FROM f ORDER BY id""")
        (oldest, newest, pending) = conn.execute(
            "SELECT min(id), max(id), count(*) FROM capture_reviews WHERE status = 'pending'"
        ).fetchone() or (0, 0, 0)
    sign_in_as(b, c, "reg-east", "/console/reviews")
    first = find(b, "#reviews li[data-review-id]")
    assert first.get_attribute("data-review-id") == str(oldest)  # the longest waiting first
    follow(b, "#reviews-next", f"li[data-review-id='{newest}']")
    assert str(pending) in b.find_element(By.ID, "reviews-count").text  # how many in all


def test_every_disinfection_cycle_is_reachable(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sensors (id, site_id, name, profile, params) "
            "VALUES ('cab-pg', 'east-1', '消毒柜 P', 'disinfection', '{}')"
        )
        conn.execute("""INSERT INTO disinfection_cycles (sensor_id, site_id, started_at, ended_at,
                            peak_c, held_s, verdict, min_temp_c, min_hold_s)
                        SELECT 'cab-pg', 'east-1', now() - g * interval '8 minutes',
                               now() - g * interval '8 minutes' + interval '5 minutes',
                               104, 300, 'too_short', 100, 600
                        FROM generate_series(1, 540) g""")  # 3 days: within the default week
    sign_in_as(b, c, "officer-e1", "/console/disinfection")
    find(b, "#dis-cycles tr[data-verdict]")
    assert "540" in find(b, "#dis-cycles-pager").text  # the count of every page
    for _ in range(8):
        seen = b.execute_script(
            "return [...document.querySelectorAll('#dis-cycles tr[data-verdict]')].length"
        )
        if "page=6" in b.current_url:
            break
        assert seen == 100
        find(b, "#dis-cycles-older").click()
        time.sleep(0.8)
    assert "page=6" in b.current_url, b.current_url
    assert len(b.find_elements(By.CSS_SELECTOR, "#dis-cycles tr[data-verdict]")) == 40
    assert not b.find_elements(By.ID, "dis-cycles-older")


def test_every_supervision_visit_is_reachable(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO supervision_visits (site_id, visited_by, visited_at, checklist)
                        SELECT 'east-1', 'reg-east', now() - g * interval '1 day', '[]'
                        FROM generate_series(1, 60) g""")
        (oldest,) = conn.execute(
            "SELECT id FROM supervision_visits ORDER BY visited_at LIMIT 1"
        ).fetchone() or (0,)
    sign_in_as(b, c, "reg-east", "/console/visits")
    find(b, "#visits-table tr[data-visit-id]")
    follow(b, "#visits-older", f"tr[data-visit-id='{oldest}']")


def test_every_delivery_of_a_supplier_is_reachable(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO suppliers (licence_no, name) VALUES ('JY-PAGE', '翻页配送')")
        conn.execute("""INSERT INTO purchases (site_id, supplier_licence, product, batch_no,
                            delivered_on, quantity, received_by)
                        SELECT 'east-1', 'JY-PAGE', '土豆', 'B' || g, current_date - g, 10, '李'
                        FROM generate_series(1, 130) g""")
        (oldest,) = conn.execute(
            "SELECT id FROM purchases WHERE supplier_licence = 'JY-PAGE' "
            "ORDER BY delivered_on LIMIT 1"
        ).fetchone() or (0,)
    sign_in_as(b, c, "officer-e1", "/console/deliveries?supplier=JY-PAGE")
    find(b, "#dl-list tr[data-purchase]")
    follow(b, "#dl-older", f"tr[data-purchase='{oldest}']")
    # a failed test traced to that oldest delivery still shows it, marked, from any page
    sign_in_as(b, c, "officer-e1", f"/console/deliveries?supplier=JY-PAGE&purchase={oldest}")
    row = find(b, f"tr#delivery-{oldest}")
    assert "highlight" in (row.get_attribute("class") or "")


def test_site_counts_and_lists_every_open_ticket(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with (
        psycopg.connect(c.db_url, autocommit=True) as conn,
        quiet(conn, "tickets"),
    ):
        conn.execute("""INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier,
                                status, title, opened_at, due_at, last_occurrence_at)
                            SELECT 'PG-OPEN-' || g, 'east-3', 'manual', 'other', 'thing-' || g, 3,
                                   'open', '旧单',
                                   now() - interval '10 days' - g * interval '1 min',
                                   now() + interval '30 days', now() - interval '10 days'
                            FROM generate_series(1, 40) g""")
        conn.execute("""INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier,
                                status, title, opened_at, due_at, last_occurrence_at, closed_at)
                            SELECT 'PG-SHUT-' || g, 'east-3', 'manual', 'other', 'done', 3,
                                   'closed', '已结', now() - g * interval '1 min',
                                   now() + interval '1 day', now(), now()
                            FROM generate_series(1, 600) g""")
    sign_in_as(b, c, "reg-east", "/console/sites/east-3")
    find(b, "#site-tickets li")
    assert b.find_element(By.ID, "site-open-count").text == "40"
    for _ in range(4):
        if "PG-OPEN-40" in b.find_element(By.ID, "site-tickets").text:
            break
        find(b, "#site-tickets-next").click()
        time.sleep(0.8)
    assert "PG-OPEN-40" in b.find_element(By.ID, "site-tickets").text


def test_overdue_ledger_reaches_past_ten_thousand_tickets(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        with quiet(conn, "tickets"):
            conn.execute("""INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier,
                                status, title, opened_at, due_at, last_occurrence_at)
                            VALUES ('PG-LATE', 'east-2', 'manual', 'late', 'late', 3, 'open',
                                    '逾期',
                                    now() - interval '30 days', now() - interval '29 days',
                                    now() - interval '30 days')""")
            conn.execute("""INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier,
                                status, title, opened_at, due_at, last_occurrence_at, closed_at)
                            SELECT 'PG-MANY-' || g, 'east-2', 'manual', 'other', 'done', 3,
                                   'closed', '已结', now() - g * interval '1 second',
                                   now() - interval '1 day', now(), now()
                            FROM generate_series(1, 10100) g""")
        (late,) = conn.execute(
            "SELECT count(*) FROM tickets WHERE status <> 'closed' AND due_at < now() "
            "AND site_id LIKE 'east-%'"
        ).fetchone() or (0,)
    sign_in_as(b, c, "reg-east", "/console/tickets?overdue=1")
    find(b, "#tickets-table tbody tr")
    wait_until(lambda: "PG-LATE" in b.find_element(By.ID, "tickets-table").text, timeout=20)
    assert str(late) in b.find_element(By.ID, "ticket-count").text
