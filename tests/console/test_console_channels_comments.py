"""Alert channels and ticket comments in a real Chromium.

The officer presses "发送测试" on the settings page and a real webhook receiver gets the
marked test message; the officer comments on a ticket and the comment shows in its
timeline and is stored as a ``comment`` event. One server and one browser serve both.
"""

from __future__ import annotations

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.api.conftest import HookServer, hook
from tests.console.conftest import Console, console_errors
from tests.console.test_console_browser import attr, find, text
from tests.console.test_console_pages import sign_in_as
from tests.support.services import wait_until

__all__ = ["hook"]

pytestmark = pytest.mark.slow


def test_send_test_button_reaches_the_webhook(
    module_console: Console, module_browser: WebDriver, hook: HookServer
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO person_channels (person_id, kind, address) "
            "VALUES ('officer-1', 'webhook', %s)",
            (f"{hook.url}/hook/officer-1",),
        )
    sign_in_as(b, c, "officer-e1", "/console/settings")
    button = find(b, "#ch-test-officer-1-0")
    row = text(b, "#channels-table tr[data-person='officer-1']") or ""
    assert "王食安" in row
    assert "/hook/officer-1" not in row  # the address is masked
    assert "发送测试" in row
    assert "东区第一小学食堂 · 食品安全员" in row  # the canteen by name and the role in words
    assert "east-1" not in row
    labels = b.execute_script(
        "return [...document.querySelectorAll(\"#channels-table tr[data-person='officer-1'] td\")]"
        ".map((td) => td.dataset.label)"
    )
    assert labels == ["通道", "地址", "食堂与角色", "测试结果"]  # a phone shows each as a card
    button.click()
    wait_until(
        lambda: attr(b, "#ch-result-officer-1-0", "data-outcome") == "delivered",
        timeout=15,
        what="test delivered",
    )
    assert (text(b, "#ch-result-officer-1-0") or "").startswith("已送达")
    assert len(hook.requests) == 1
    got = hook.requests[0]
    assert got.path == "/hook/officer-1"
    assert got.body["event"] == "channel_test"
    assert got.body["sent_by"] == "officer-e1"
    assert console_errors(b) == []


def test_officer_comments_on_a_ticket(module_console: Console, module_browser: WebDriver) -> None:
    c, b = module_console, module_browser
    tid = c.world.tickets["east-1:temp_high"]
    sign_in_as(b, c, "officer-e1", f"/console/tickets/{tid}")
    find(b, "#comment-send").click()  # empty: refused in the page
    wait_until(lambda: text(b, "#comment-message") == "请输入评论内容。", what="empty refused")
    find(b, "#comment-text").send_keys("维修师傅明早到场")
    find(b, "#comment-send").click()
    wait_until(
        lambda: attr(b, "#timeline li:last-child", "data-kind") == "comment", what="comment shown"
    )
    last = text(b, "#timeline li:last-child") or ""
    assert "评论" in last
    assert "维修师傅明早到场" in last
    assert "王食安" in last  # the account's person, not its username
    assert text(b, "#comment-message") == "评论已添加。"
    with psycopg.connect(c.db_url) as conn:
        row = conn.execute(
            "SELECT actor, note FROM ticket_events WHERE ticket_id = %s AND kind = 'comment'",
            (tid,),
        ).fetchall()
    assert row == [("officer-e1", "维修师傅明早到场")]
    assert console_errors(b) == []


def test_a_close_the_data_proposed_is_offered_once_it_has_held(
    module_console: Console, module_browser: WebDriver
) -> None:
    """The cold chain's usual end: the alarm cleared, the data proposes the close, and the
    officer may confirm it once the temperature has held for the stable time (30 min). The
    page says from when, and the button appears then without a reload."""
    c, b = module_console, module_browser
    tid = c.world.tickets["east-1:temp_high"]
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE tickets SET close_proposed_at = now() - interval '30 minutes' "
            "+ interval '4 seconds' WHERE id = %s",
            (tid,),
        )
    try:
        sign_in_as(b, c, "officer-e1", f"/console/tickets/{tid}")
        proposed = find(b, "#close-proposed")
        assert "起可确认关闭" in proposed.text, proposed.text
        buttons = b.execute_script(
            "return [...document.querySelectorAll('#action-buttons button')].map((x) => x.id)"
        )
        assert "act-confirm_close" not in buttons  # it could only be refused now
        b.execute_script("window.bkNoReload = 1")
        wait_until(lambda: b.find_elements(By.ID, "act-confirm_close"), timeout=10, what="button")
        assert (text(b, "#close-proposed") or "").endswith("可确认关闭")
        assert b.execute_script("return window.bkNoReload") == 1  # redrawn, not reloaded
        find(b, "#act-confirm_close").click()
        wait_until(lambda: attr(b, "#ticket-status", "data-status") == "closed", what="closed")
        assert console_errors(b) == []
    finally:
        with psycopg.connect(c.db_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE tickets SET status = 'open', closed_at = NULL, verified_by = NULL, "
                "close_proposed_at = NULL WHERE id = %s",
                (tid,),
            )
