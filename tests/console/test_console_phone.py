"""Phone width: a canteen officer works at 375×812 with no sideways scrolling; then the
regulator verifies the fix on a desktop. One server and one Chromium for the module."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import Console, console_errors, png_bytes, shot, viewport
from tests.console.test_console_browser import attr, find, text
from tests.console.test_console_pages import sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

PHONE = (375, 812)


def sideways(driver: WebDriver) -> int:
    """How many CSS pixels the page would scroll sideways (0: none)."""
    return int(
        driver.execute_script(
            "const e = document.scrollingElement; return e.scrollWidth - e.clientWidth;"
        )
    )


def test_officer_on_a_phone_rectifies_and_the_regulator_verifies(
    module_console: Console, module_browser: WebDriver, tmp_path: Path
) -> None:
    c, b = module_console, module_browser
    tid = c.world.tickets["east-1:temp_high"]
    viewport(b, *PHONE, mobile=True)
    try:
        sign_in_as(b, c, "officer-e1", "/console/")
        find(b, "#sites-table tr.site-row")
        header = b.execute_script("return document.getElementById('top').offsetHeight")
        assert header <= PHONE[1] * 0.2, header  # the header leaves the screen to the work
        for path, ready in (
            ("/console/", "#sites-table tr.site-row"),
            ("/console/tickets", "#tickets-table tr[data-ticket-id]"),
            ("/console/sites/east-1", "#sensors li"),
            ("/console/kitchen", "#kitchen"),
            ("/console/inspections", "#inspections-table"),
            ("/console/settings", "section[data-site-id]"),
            (f"/console/tickets/{tid}", "#timeline li"),
        ):
            b.get(c.url + path)
            find(b, ready)
            assert sideways(b) <= 0, (path, sideways(b))
            if path in ("/console/", "/console/tickets"):
                shot(b, f"phone-{'overview' if path == '/console/' else 'ledger'}.png")
        find(b, "#action-note").send_keys("冷藏柜门封条已更换")
        find(b, "#act-acknowledge").click()
        wait_until(
            lambda: attr(b, "#ticket-status", "data-status") == "acknowledged",
            what="acknowledged",
        )
        photo = tmp_path / "fixed.png"
        photo.write_bytes(png_bytes(120, 90))
        find(b, "#action-photos").send_keys(str(photo))
        find(b, "#action-note").send_keys("压缩机已维修，温度 4 °C")
        find(b, "#act-rectify").click()
        wait_until(
            lambda: attr(b, "#ticket-status", "data-status") == "rectified", what="rectified"
        )
        assert sideways(b) <= 0
        shot(b, "phone-ticket.png")
        assert console_errors(b) == []
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    sign_in_as(b, c, "reg-east", f"/console/tickets/{tid}")
    find(b, "#act-verify")
    assert "压缩机已维修" in (text(b, "#timeline") or "")
    find(b, "#action-note").send_keys("照片核实，合格")
    find(b, "#act-verify").click()
    wait_until(lambda: attr(b, "#ticket-status", "data-status") == "closed", what="verified")
    with psycopg.connect(c.db_url) as conn:
        status, kinds = conn.execute(
            """SELECT t.status, array_agg(e.kind ORDER BY e.id) FROM tickets t
               JOIN ticket_events e ON e.ticket_id = t.id WHERE t.id = %s GROUP BY t.status""",
            (tid,),
        ).fetchone() or (None, [])
    assert status == "closed"
    assert kinds[-3:][0] in ("acknowledged", "rectified")
    assert "rectified" in kinds
    assert "verified" in kinds
    assert not b.find_elements(By.ID, "act-verify")
    assert console_errors(b) == []
