"""The wall screen's trend is by kind (the rule a ticket follows), in words, and each kind's
total is the count of the ledger the same kind links to."""

from __future__ import annotations

import re

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.services.labels import RULE_LABELS
from tests.console.conftest import Console, console_errors
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def test_trend_by_kind_matches_the_ledger_of_that_kind(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    sign_in_as(b, c, "reg-east", "/console/wall")
    find(b, "#wall-kinds li")
    find(b, "#wall button[data-days='7']").click()
    days = "const e = document.querySelector('#wall-trend'); return e && e.dataset.days"
    # read in the page: the wall redraws #wall-trend live, so a held element can go stale
    wait_until(lambda: b.execute_script(days) == "7", what="7 days")
    shown: dict[str, str] = b.execute_script(  # one read: the wall redraws itself live
        "return Object.fromEntries([...document.querySelectorAll('#wall-kinds li[data-rule]')]"
        ".map((li) => [li.dataset.rule, li.textContent.trim()]))"
    )
    with psycopg.connect(c.db_url) as conn:
        expected = dict(
            conn.execute(
                """SELECT t.rule, count(*) FROM tickets t JOIN sites s ON s.id = t.site_id
                   WHERE s.region_id = 'd-east' AND t.opened_at >= now() - interval '6 days'
                   GROUP BY 1"""
            ).fetchall()
        )
    assert set(shown) == set(expected)  # kinds of tickets, never sources; east only
    for rule, line in shown.items():
        assert RULE_LABELS[rule][0] in line  # the rule in words ...
        assert rule not in line  # ... never its code
        assert line.endswith(str(expected[rule]))
    rule = next(iter(shown))
    find(b, f"#wall-kinds li[data-rule='{rule}'] a").click()
    find(b, "#tickets-table")
    assert find(b, "#f-opened_from").is_selected()  # the window goes along, visibly
    count = re.findall(r"\d+", text(b, "#ticket-count") or "")
    assert count == [str(expected[rule])]
    rows = b.find_elements(By.CSS_SELECTOR, "#tickets-table tr[data-ticket-id]")
    assert len(rows) == expected[rule]
    assert all(RULE_LABELS[rule][0] in r.text for r in rows)
    assert console_errors(b) == []
