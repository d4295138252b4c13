"""A 包保 cadre records a supervision visit on a phone from the API's checklist: a "no"
without saying what was found is refused in words, then the visit is stored with its
finding; an officer is not offered the form."""

from __future__ import annotations

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import Console, console_errors, shot, viewport
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import nav, sign_in_as
from tests.console.test_console_phone import PHONE, sideways
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def test_cadre_records_a_visit_on_a_phone(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    viewport(b, *PHONE, mobile=True)
    try:
        sign_in_as(b, c, "reg-east", "/console/visits")
        find(b, "#visit-form .visit-item")
        items = [
            li.get_attribute("data-item")
            for li in b.find_elements(By.CSS_SELECTOR, "#visit-form .visit-item")
        ]
        assert len(items) >= 3
        assert "/visits" in nav(b)
        find(b, "#visit-site option[value='east-2']").click()
        for i, key in enumerate(items):
            find(b, f"#visit-{key}-{'no' if i == 0 else 'yes'}").click()
        find(b, "#visit-submit").click()
        wait_until(lambda: "填写的内容有误" in (text(b, "#visit-status") or ""), what="refusal")
        assert "note" in (text(b, "#visit-status") or "")
        refused = console_errors(b)
        assert len(refused) == 1
        assert "422" in refused[0]
        find(b, f"#visit-{items[0]}-note").send_keys("冷库温度记录缺两天")
        find(b, "#visit-note").send_keys("整体良好")
        find(b, "#visit-submit").click()
        wait_until(
            lambda: b.find_elements(By.CSS_SELECTOR, "#visits-table tr[data-site-id='east-2']"),
            what="visit listed",
        )
        row = find(b, "#visits-table tr[data-site-id='east-2']")
        assert "东区第二中学食堂" in row.text
        assert "reg-east" in row.text
        assert sideways(b) <= 0
        b.execute_script("window.scrollTo(0, 0)")
        shot(b, "phone-visit.png")
        assert console_errors(b) == []
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    with psycopg.connect(c.db_url) as conn:
        stored = conn.execute(
            "SELECT site_id, findings, note FROM supervision_visits WHERE visited_by = 'reg-east'"
        ).fetchall()
    assert stored == [("east-2", 1, "整体良好")]


def test_officer_reads_visits_without_the_form(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    sign_in_as(b, c, "officer-e1", "/console/visits")
    find(b, "#visits-table")
    assert not b.find_elements(By.ID, "visit-form")
    assert "/visits" not in nav(b)
    assert not b.find_elements(By.CSS_SELECTOR, "#visits-table tr[data-site-id='east-2']")
    assert console_errors(b) == []
