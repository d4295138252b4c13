"""The console over a working day: the minute's stream rotation does not redraw a page, every
complaint and inspection is reachable, long typed words never widen a phone page, and a
request that never reaches the server is said in words."""

from __future__ import annotations

import time

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.console import events
from tests.console.conftest import Console, viewport
from tests.console.test_console_browser import find
from tests.console.test_console_pages import sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def sideways(driver: WebDriver) -> int:
    return int(
        driver.execute_script(
            "const e = document.scrollingElement; return e.scrollWidth - e.clientWidth;"
        )
    )


def test_stream_rotation_neither_redraws_nor_resets_the_chart(
    module_console: Console, module_browser: WebDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    c, b = module_console, module_browser
    monkeypatch.setitem(events.frames.__kwdefaults__, "max_s", 2.0)  # the server's 60 s, faster
    sign_in_as(b, c, "officer-e1", "/console/sites/east-1")
    seven = "li.sensor[data-sensor-id='fridge-e1'] button[data-range='7d']"
    find(b, seven).click()
    wait_until(
        lambda: b.find_element(By.CSS_SELECTOR, seven).get_attribute("aria-pressed") == "true"
    )
    b.execute_script("""window.__first = document.getElementById('main').firstElementChild;
      window.__states = []; const badge = document.getElementById('live-state');
      new MutationObserver(() => window.__states.push(badge.dataset.state))
        .observe(badge, {attributes: true});""")
    time.sleep(9)  # two or three rotations
    assert b.execute_script(
        "return document.getElementById('main').firstElementChild === window.__first"
    )
    assert b.find_element(By.CSS_SELECTOR, seven).get_attribute("aria-pressed") == "true"
    assert "connecting" not in b.execute_script("return window.__states")


def test_newest_decided_complaint_is_listed_and_older_ones_are_paged(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO complaints (tracking_code, site_id, body, client_hash, status,
                          reply, decided_by, decided_at, created_at)
                        SELECT 'OLD' || g, 'east-1', 'old', 'h', 'dismissed', 'r', 'reg-east',
                               now() - (600 - g) * interval '1 hour',
                               now() - (600 - g) * interval '1 hour'
                        FROM generate_series(1, 505) g""")
        conn.execute("""INSERT INTO complaints (tracking_code, site_id, body, client_hash, status,
                          reply, decided_by, decided_at, created_at)
                        VALUES ('NEWEST', 'east-2', 'new', 'h', 'dismissed', 'r', 'reg-east',
                                now(), now())""")
    sign_in_as(b, c, "reg-east", "/console/complaints")
    first = find(b, "#cp-done tbody tr")
    assert first.get_attribute("data-complaint")
    assert "NEWEST" in first.text
    assert b.find_elements(By.ID, "cp-older")  # OLD1 … are a click away, not cut off at 500


def test_every_waiting_complaint_is_reachable_oldest_first(
    module_console: Console, module_browser: WebDriver
) -> None:
    """The queue stopped at 200 with its heading saying 200: every complaint waiting for a
    decision is a page away, the oldest (most urgent) first."""
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO complaints (tracking_code, site_id, body, client_hash, status,
                          created_at)
                        SELECT 'WAIT' || g, 'east-1', 'body ' || g, 'h', 'received',
                               now() - (100 - g) * interval '1 minute'
                        FROM generate_series(1, 60) g""")
    sign_in_as(b, c, "reg-east", "/console/complaints")
    assert find(b, "#cp-queue-h").text.endswith("(50+)")
    assert "body 1\n" in find(b, "#cp-queue li").text + "\n"  # the oldest first
    find(b, "#cp-queue-next").click()

    def queue_text() -> str:  # the page redraws: the list is briefly absent
        return " ".join(e.text for e in b.find_elements(By.ID, "cp-queue"))

    wait_until(lambda: "WAIT60" in queue_text(), 10, what="WAIT60")
    assert "queue_page=2" in b.current_url
    assert find(b, "#cp-queue-h").text.endswith("(60)")


def test_every_inspection_is_reachable(module_console: Console, module_browser: WebDriver) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute("""INSERT INTO inspections (site_id, kind, started_at, finished_at, created_by)
                        SELECT 'east-1', 'routine', now() - g * interval '1 day',
                               now() - g * interval '1 day', 'reg-east'
                        FROM generate_series(1, 210) g""")
        (oldest,) = conn.execute(
            "SELECT id FROM inspections ORDER BY started_at LIMIT 1"
        ).fetchone()
    sign_in_as(b, c, "reg-east", "/console/inspections")
    find(b, "#inspections-table tr[data-inspection-id]")
    for _ in range(10):
        if b.find_elements(By.CSS_SELECTOR, f"tr[data-inspection-id='{oldest}']"):
            break
        find(b, "#insp-next").click()
        time.sleep(0.8)
    assert b.find_elements(By.CSS_SELECTOR, f"tr[data-inspection-id='{oldest}']")


def test_a_long_url_in_a_comment_or_complaint_keeps_the_phone_page_narrow(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    tid = c.world.tickets["east-1:temp_high"]
    url = "https://example.com/repair/" + "abcdef0123456789" * 6
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ticket_events (ticket_id, actor, kind, note)"
            " VALUES (%s, 'officer-e1', 'comment', %s)",
            (tid, "维修单 " + url),
        )
        conn.execute(
            """INSERT INTO complaints (tracking_code, site_id, body, client_hash, status,
                                     created_at)
                        VALUES ('LONG', 'east-1', %s, 'h', 'received', now())""",
            ("照片见 " + url,),
        )
    viewport(b, 375, 812, mobile=True)
    try:
        sign_in_as(b, c, "officer-e1", f"/console/tickets/{tid}")
        find(b, "#timeline li .note")
        assert sideways(b) <= 0, sideways(b)
        sign_in_as(b, c, "reg-east", "/console/complaints")
        find(b, ".complaint-body")
        assert sideways(b) <= 0, sideways(b)
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_an_unreachable_server_is_said_in_words(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    sign_in_as(b, c, "officer-e1", f"/console/tickets/{c.world.tickets['east-1:temp_high']}")
    find(b, "#comment-text").send_keys("门已修好")
    b.execute_cdp_cmd("Network.enable", {})
    b.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    try:
        find(b, "#comment-send").click()
        wait_until(lambda: b.find_element(By.ID, "comment-message").text)
        said = b.find_element(By.ID, "comment-message").text
        assert "Failed to fetch" not in said, said
        assert "网络" in said, said
    finally:
        b.execute_cdp_cmd(
            "Network.emulateNetworkConditions",
            {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
        )
