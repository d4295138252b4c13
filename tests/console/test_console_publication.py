"""The console's publication settings (阳光公示) and the QR sheet for a canteen's door, in Chromium.

The east regulator finds nothing published (the default), publishes some sections and the
complaint form, and the database and the public page follow; the canteen's QR sheet shows
the API's QR code, and in print only the sheet is on paper. An officer prints its own
canteen's sheet but has no publication page in the navigation.
"""

from __future__ import annotations

import httpx
import psycopg
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import Console, console_errors, shot
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import nav, sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def _shown(b: WebDriver, css: str) -> bool:
    return bool(
        b.execute_script(
            "const e = document.querySelector(arguments[0]);"
            "return !!e && getComputedStyle(e).display !== 'none';",
            css,
        )
    )


def test_regulator_publishes_and_prints_a_canteen_qr_code(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    sign_in_as(b, c, "reg-east", "/console/publication")
    assert "未设置" in (find(b, "#pub-state").text or "")
    assert find(b, "#pub-region option:checked").text == "东区"
    assert console_errors(b) == []  # nothing set anywhere is no failed load either
    assert find(b, "label[for='pub-show_disinfection']").text == "餐具消毒达标情况（30 天）"
    for box in ("enabled", "show_inspection", "show_disinfection", "accept_complaints"):
        find(b, f"#pub-{box}").click()
    find(b, "#pub-save").click()
    wait_until(lambda: "reg-east" in (text(b, "#pub-state") or ""), what="saved setting shown")
    assert "东区" in (text(b, "#pub-state") or "")
    assert find(b, "#pub-show_inspection").is_selected()
    assert find(b, "#pub-show_disinfection").is_selected()
    assert not find(b, "#pub-show_rapid_tests").is_selected()
    assert not find(b, "#pub-show_cold_chain").is_selected()
    with psycopg.connect(c.db_url) as conn:
        row = conn.execute(
            """SELECT enabled, show_inspection, show_cold_chain, show_disinfection,
                      show_rapid_tests, accept_complaints, updated_by
               FROM public_settings WHERE region_id = 'd-east'"""
        ).fetchone()
    assert row == (True, True, False, True, False, True, "reg-east")
    with httpx.Client(base_url=c.url, timeout=10) as public:
        page = public.get("/public/canteens/east-1").text
    assert "not published" not in page
    assert "Tableware disinfection, last 30 days" in page  # published on its own
    assert "Cold chain" not in page
    assert 'action="/public/canteens/east-1/complaints"' in page
    # in English the switch reads in English
    find(b, "#lang-switch").click()
    wait_until(
        lambda: (
            text(b, "label[for='pub-show_disinfection']")
            == "Tableware disinfection compliance (30 days)"
        ),
        what="the English label",
    )
    find(b, "#lang-switch").click()
    wait_until(lambda: text(b, "h1") == "阳光公示设置", what="Chinese again")

    find(b, "#pub-sites li[data-site-id='east-1'] a[data-link]").click()
    wait_until(
        lambda: b.execute_script(
            "const i = document.getElementById('qr-img'); return !!i && i.naturalWidth > 0"
        ),
        what="the QR code drawn",
    )
    assert find(b, "#qr-site").text == "东区第一小学食堂"
    assert _shown(b, ".top")
    assert _shown(b, "#qr-print")
    b.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not _shown(b, ".top")  # on paper: the sheet only
        assert not _shown(b, "#qr-print")
        assert _shown(b, "#qr-img")
        shot(b, "qr-sheet.png")
    finally:
        b.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

    sign_in_as(b, c, "officer-e1", "/console/sites/east-1")
    find(b, "#site-qr").click()
    wait_until(
        lambda: b.execute_script(
            "const i = document.getElementById('qr-img'); return !!i && i.naturalWidth > 0"
        ),
        what="the officer's QR sheet",
    )
    assert "/publication" not in nav(b)
    assert console_errors(b) == []
