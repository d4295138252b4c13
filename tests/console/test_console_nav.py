"""The regulator's navigation: two links and three menus (监管 / 台账 / 设置) that fit one row on
a 375 px phone and on a desktop, open and close from the keyboard, and never push the page
sideways."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import Console, console_errors, shot, viewport
from tests.console.test_console_browser import find, nav_menus
from tests.console.test_console_pages import sign_in_as
from tests.console.test_console_phone import PHONE, sideways
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

SUPERVISE = "details[data-group='nav_g_supervise']"
RECORDS = "details[data-group='nav_g_records']"
SETTINGS = "details[data-group='nav_g_settings']"


def row_height(b: WebDriver) -> int:
    return int(b.execute_script("return document.querySelector('header nav > ul').offsetHeight"))


def is_open(b: WebDriver, css: str) -> bool:
    return bool(b.execute_script("return document.querySelector(arguments[0]).open", css))


def active_id(b: WebDriver) -> str:
    return str(b.execute_script("return document.activeElement.getAttribute('href') || ''"))


def inside_screen(b: WebDriver, css: str) -> bool:
    return bool(
        b.execute_script(
            "return [...document.querySelectorAll(arguments[0])].every((e) => {"
            " const r = e.getBoundingClientRect(); return r.left >= 0 && r.right <= innerWidth; })",
            css,
        )
    )


def test_regulator_menus_fit_a_phone_and_work_from_the_keyboard(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    viewport(b, *PHONE, mobile=True)
    try:
        sign_in_as(b, c, "reg-east", "/console/")
        find(b, "#sites-table tr.site-row")
        assert nav_menus(b) == [
            "总览",
            "整改台账",
            [
                "监管",
                "抓拍审核",
                "群众投诉",
                "监督检查",
                "包保督导",
                "包保覆盖",
                "大屏",
                "后厨看板",
            ],
            ["台账", "快检", "进货查验", "食安保险"],
            ["设置", "阳光公示", "用户与设置"],
        ]
        one_row = row_height(b)
        assert one_row <= 40, one_row  # the five entries share one row at 375 px
        assert inside_screen(b, "header nav > ul > li")
        assert sideways(b) <= 0
        assert not find(b, "header nav a[href='/console/rapid-tests']").is_displayed()

        # the keyboard: Enter opens a menu, Tab walks into it, Escape closes it
        summary = find(b, f"{RECORDS} > summary")
        b.execute_script("arguments[0].focus()", summary)
        summary.send_keys(Keys.ENTER)
        wait_until(lambda: is_open(b, RECORDS), what="records menu open")
        assert find(b, "header nav a[href='/console/rapid-tests']").is_displayed()
        assert inside_screen(b, f"{RECORDS} .nav-menu")
        assert sideways(b) <= 0
        shot(b, "phone-nav.png")
        b.switch_to.active_element.send_keys(Keys.TAB)
        assert active_id(b) == "/console/rapid-tests"
        b.switch_to.active_element.send_keys(Keys.ESCAPE)
        wait_until(lambda: not is_open(b, RECORDS), what="records menu closed")
        assert b.switch_to.active_element == find(b, f"{RECORDS} > summary")

        # one menu at a time; a click elsewhere closes it
        find(b, f"{SUPERVISE} > summary").click()
        wait_until(lambda: is_open(b, SUPERVISE), what="supervision open")
        find(b, f"{SETTINGS} > summary").click()
        wait_until(lambda: is_open(b, SETTINGS) and not is_open(b, SUPERVISE), what="one open")
        assert inside_screen(b, f"{SETTINGS} .nav-menu")
        find(b, "#live-state").click()  # (the open menu lies over the page's title)
        wait_until(lambda: not is_open(b, SETTINGS), what="closed by a click elsewhere")

        # Enter on a link goes there; the menu holding the page is marked
        find(b, f"{SETTINGS} > summary").send_keys(Keys.ENTER)
        link = find(b, "header nav a[href='/console/settings']")
        wait_until(link.is_displayed, what="settings link shown")
        link.send_keys(Keys.ENTER)
        find(b, "#users-table")
        assert "here" in str(find(b, f"{SETTINGS} > summary").get_attribute("class"))
        assert (
            find(b, "header nav a[aria-current='page']")
            .get_attribute("href")
            .endswith("/console/settings")
        )
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    # a desktop: the same one row, the brand and the user's name beside it
    b.get(c.url + "/console/")
    find(b, "#sites-table tr.site-row")
    assert row_height(b) <= 40
    assert int(b.execute_script("return document.getElementById('top').offsetHeight")) <= 70
    assert len(b.find_elements(By.CSS_SELECTOR, "header nav details")) == 3
    assert console_errors(b) == []
