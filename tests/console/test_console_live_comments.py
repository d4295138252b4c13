"""Ticket timelines are live: a comment or any other timeline entry written by one person
appears on the ticket page another person has open, within 2 s and without a reload, and
the stream never carries an entry of a canteen outside the reader's scope.

Two browsers (two Chromium processes: separate cookies, separate sessions) have the same
ticket open: the officer of east-1 and the east regulator.
"""

from __future__ import annotations

import json
import queue
from pathlib import Path

import psycopg
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from api.auth.scope import Role
from api.auth.users import create_user
from tests.console.conftest import PASSWORD, Console, chromium, console_errors
from tests.console.test_console_browser import attr, find, text
from tests.console.test_console_live import LIVE_S, event_stream, next_event
from tests.console.test_console_pages import sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def last_entry(b: WebDriver) -> tuple[str | None, str]:
    return attr(b, "#timeline li:last-child", "data-kind"), text(b, "#timeline li:last-child") or ""


def test_a_comment_appears_on_the_other_open_ticket_page_without_reload(
    module_console: Console, module_browser: WebDriver, tmp_path: Path
) -> None:
    c, officer = module_console, module_browser
    tid = c.world.tickets["east-1:temp_high"]
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        create_user(
            conn, username="reg-west", role=Role.REGULATOR, password=PASSWORD, region_id="d-west"
        )
        west_tid = conn.execute(
            "SELECT id FROM tickets WHERE site_id = 'west-1' ORDER BY id LIMIT 1"
        ).fetchone()
    assert west_tid is not None
    page = f"/console/tickets/{tid}"
    with chromium(tmp_path / "chrome-2", tmp_path) as regulator:
        sign_in_as(officer, c, "officer-e1", page)
        sign_in_as(regulator, c, "reg-east", page)
        for b in (officer, regulator):
            find(b, "#timeline li")
            wait_until(lambda b=b: text(b, "#live-state") == "● 实时", what="live")
            b.execute_script("window.__same_page = true")  # gone if the page reloads

        with event_stream(c, "reg-west") as west, event_stream(c, "reg-east") as east:
            assert next_event(west, timeout=10)["event"] == "hello"
            assert next_event(east, timeout=10)["event"] == "hello"

            # the regulator comments; the officer's open page shows it
            find(regulator, "#comment-text").send_keys("请今天下班前上传维修照片")
            find(regulator, "#comment-send").click()
            wait_until(
                lambda: (
                    last_entry(officer)[0] == "comment"
                    and "请今天下班前上传维修照片" in last_entry(officer)[1]
                ),
                timeout=LIVE_S + 1,  # the click's own round trip, then at most 2 s
                what="the comment on the officer's page",
            )
            assert "reg-east" in last_entry(officer)[1]
            ev = next_event(east)
            assert ev["event"] == "ticket_event"
            data = json.loads(ev["data"])
            assert (data["ticket_id"], data["event"], data["site_id"]) == (tid, "comment", "east-1")
            assert "维修" not in ev["data"]  # the stream names the entry, never its text

            # any timeline entry, written by anyone (here straight into the database),
            # reaches both open pages
            with psycopg.connect(c.db_url, autocommit=True) as conn:
                conn.execute(
                    """INSERT INTO ticket_events (ticket_id, actor, kind, note)
                       VALUES (%s, 'officer-e1', 'comment', '冷柜已经修好')""",
                    (tid,),
                )
                conn.execute(
                    """INSERT INTO ticket_events (ticket_id, actor, kind, note)
                       VALUES (%s, 'reg-west', 'comment', '西区的评论')""",
                    (west_tid[0],),
                )
            for b in (officer, regulator):
                wait_until(
                    lambda b=b: "冷柜已经修好" in last_entry(b)[1],
                    timeout=LIVE_S,
                    what="the new entry on both pages",
                )
                assert b.execute_script("return window.__same_page === true")  # no reload
            assert json.loads(next_event(east)["data"])["ticket_id"] == tid
            with pytest.raises(queue.Empty):
                next_event(east, timeout=0.5)  # the west ticket's entry is not east's
            west_events = []
            while True:
                try:
                    west_events.append(next_event(west, timeout=0.5))
                except queue.Empty:
                    break
            assert [json.loads(e["data"])["ticket_id"] for e in west_events] == [west_tid[0]]
        assert "西区的评论" not in (text(officer, "main") or "")
        assert console_errors(officer) == []
        assert console_errors(regulator) == []
