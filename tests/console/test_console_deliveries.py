"""The console's deliveries page (进货查验), driven in Chromium against the real API and PostgreSQL.

An officer on a 375 px phone records a delivery with a photo; each wrong field is said next
to it in Chinese (and in English after the switch) before anything is sent; a delivery
recorded twice is refused at its batch number. A failed rapid test and a supplier flag
link to the deliveries they trace to; a regulator sees the region's deliveries, an insurer
no form and no nav link; the page never scrolls sideways and logs no error.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from api.auth.scope import Role
from api.auth.users import create_user
from bkcommon.timeutil import utcnow
from tests.console.conftest import PASSWORD, Console, console_errors, png_bytes, viewport
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import nav, sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

LICENCE = "JY13301020000077"


def _type(b: WebDriver, field: str, value: str) -> None:
    el = find(b, f"#dl-{field}")
    el.clear()
    el.send_keys(value)


def _error(b: WebDriver, field: str) -> str:
    return text(b, f"#dl-{field}-error") or ""


def _seed_trace(db_url: str) -> tuple[int, int]:
    """A delivery at east-1 whose sample failed, and the same supplier's delivery at east-2
    flagged by it; west-1 (another district) has one too. Answers (traced, flagged) ids."""
    day = (utcnow() - timedelta(days=1)).date()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO suppliers (licence_no, name) VALUES (%s, '东区蔬菜配送中心') "
            "ON CONFLICT DO NOTHING",
            (LICENCE,),
        )
        ids = []
        for site, product in (("east-1", "青菜"), ("east-2", "菠菜"), ("west-1", "生菜")):
            row = conn.execute(
                """INSERT INTO purchases (site_id, supplier_licence, product, batch_no,
                       delivered_on, quantity, received_by)
                   VALUES (%s, %s, %s, 'T-1', %s, 20, '李收货') RETURNING id""",
                (site, LICENCE, product, day),
            ).fetchone()
            assert row is not None
            ids.append(int(row[0]))
        test = conn.execute(
            """INSERT INTO rapid_tests (site_id, purchase_id, sample_no, product,
                   supplier_licence, batch_no, item, method, result, value, limit_value, unit,
                   tester, tested_at)
               VALUES ('east-1', %s, 'S-TRACE', '青菜', %s, 'T-1', 'pesticide_enzyme',
                       '速测卡法', 'fail', 63, 50, '%%', '张检', %s) RETURNING id""",
            (ids[0], LICENCE, utcnow()),
        ).fetchone()
        assert test is not None
        conn.execute(
            """INSERT INTO supplier_flags (rapid_test_id, purchase_id, site_id, supplier_licence,
                                           created_at)
               VALUES (%s, %s, 'east-2', %s, %s)""",
            (int(test[0]), ids[1], LICENCE, utcnow()),
        )
    return ids[0], ids[1]


def test_officer_records_a_delivery_on_a_phone_with_errors_by_field(
    module_console: Console, module_browser: WebDriver, tmp_path: Path
) -> None:
    c, b = module_console, module_browser
    viewport(b, 375, 800, mobile=True)
    try:
        sign_in_as(b, c, "officer-e1", "/console/deliveries")
        assert "/deliveries" in nav(b)
        find(b, "#dl-form")
        assert find(b, "#dl-photo").get_attribute("capture") == "environment"
        assert find(b, "#dl-quantity").get_attribute("inputmode") == "decimal"

        # Nothing typed: every missing field says so next to itself; nothing is sent.
        find(b, "#dl-save").click()
        wait_until(lambda: _error(b, "product"), what="the product's error")
        assert _error(b, "product") == "请填写品名。"
        assert _error(b, "supplier_licence") == "请填写供应商许可证号。"
        assert _error(b, "quantity") == "请填写数量。"
        assert _error(b, "received_by") == ""  # filled in with the signed-in user
        assert find(b, "#dl-product").get_attribute("aria-invalid") == "true"
        assert find(b, "#dl-product").get_attribute("aria-describedby") == "dl-product-error"
        assert "需要修改" in (text(b, "#dl-status") or "")

        _type(b, "supplier_name", "东区蔬菜配送中心")
        _type(b, "supplier_licence", LICENCE)
        _type(b, "product", "土豆")
        _type(b, "batch_no", "P-0301")
        _type(b, "quantity", "0")
        tomorrow = (utcnow() + timedelta(days=2)).date()
        b.execute_script(
            "document.getElementById('dl-delivered_on').value = arguments[0]", str(tomorrow)
        )
        find(b, "#dl-save").click()
        wait_until(lambda: _error(b, "quantity").startswith("数量要大于 0"), what="quantity")
        assert _error(b, "delivered_on") == "进货日期不能晚于今天。"
        assert _error(b, "product") == ""
        assert find(b, "#dl-product").get_attribute("aria-invalid") is None
        assert console_errors(b) == []  # refused in the browser: no request was sent

        _type(b, "quantity", "40.5")
        b.execute_script(
            "document.getElementById('dl-delivered_on').value = arguments[0]",
            str(utcnow().date()),
        )
        Select(find(b, "#dl-unit")).select_by_value("kg")
        _type(b, "received_by", "王师傅")
        photo = tmp_path / "note.png"
        photo.write_bytes(png_bytes())
        find(b, "#dl-photo").send_keys(str(photo))
        find(b, "#dl-save").click()
        wait_until(lambda: "已保存" in (text(b, "#dl-status") or ""), what="saved")
        assert "照片已保存" in (text(b, "#dl-status") or "")
        row = find(b, "#dl-list tr[data-purchase]")
        assert "土豆" in row.text
        assert "40.5 千克" in row.text
        assert "王师傅" in row.text
        assert "东区第一小学食堂" in row.text
        assert row.find_elements(By.CSS_SELECTOR, "a[href$='/photo']")
        assert find(b, "#dl-product").get_attribute("value") == ""  # ready for the next one
        with psycopg.connect(c.db_url) as conn:
            stored = conn.execute(
                "SELECT site_id, quantity::text, unit, received_by, photo_sha256 IS NOT NULL "
                "FROM purchases WHERE batch_no = 'P-0301'"
            ).fetchone()
        assert stored == ("east-1", "40.500", "kg", "王师傅", True)
        wide = b.execute_script("return document.documentElement.scrollWidth")
        assert wide <= 375, f"the page scrolls sideways on a phone: {wide} px"
        assert console_errors(b) == []

        # The same delivery again: the API's 409 is said at the batch number.
        _type(b, "product", "土豆")
        _type(b, "batch_no", "P-0301")
        _type(b, "quantity", "40.5")
        find(b, "#dl-save").click()
        wait_until(lambda: "已经登记过" in _error(b, "batch_no"), what="the conflict")
        refusals = console_errors(b)  # the browser logs the 409 itself: that one and no other
        assert len(refusals) == 1
        assert "409" in refusals[0]

        # English: labels and errors in English.
        find(b, "#lang-switch").click()
        wait_until(lambda: (text(b, "h1") or "") == "Deliveries", what="English")
        _type(b, "product", "")
        find(b, "#dl-save").click()
        wait_until(lambda: _error(b, "product") == "Enter the product.", what="English error")
        assert "40.5 kg" in find(b, "#dl-list tr[data-purchase]").text
        find(b, "#lang-switch").click()
        wait_until(lambda: (text(b, "h1") or "") == "进货查验", what="back to Chinese")
        assert console_errors(b) == []
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_failed_rapid_test_and_a_flag_link_to_their_deliveries(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    traced, flagged = _seed_trace(c.db_url)
    sign_in_as(b, c, "reg-east", "/console/rapid-tests")
    assert "/deliveries" in nav(b)
    link = find(b, "#rt-tests tr[data-sample='S-TRACE'] a.trace")
    assert link.text == "追溯进货记录"
    link.click()
    find(b, "#dl-filter")
    assert "东区蔬菜配送中心" in (text(b, "#dl-filter") or "")
    row = find(b, f"#delivery-{traced}")
    assert "highlight" in (row.get_attribute("class") or "")
    assert "快检追溯到的这批进货" in row.text
    assert "快检不合格" in row.text
    flagged_row = find(b, f"#delivery-{flagged}")
    assert "预警" in flagged_row.text
    # The regulator of the east district sees its deliveries, not the west's.
    sites = {
        r.get_attribute("data-site-id")
        for r in b.find_elements(By.CSS_SELECTOR, "#dl-list tr[data-purchase]")
    }
    assert sites == {"east-1", "east-2"}
    # The flag on the rapid-test page links to the flagged delivery.
    b.get(c.url + "/console/rapid-tests")
    find(b, f"#rt-flags tr[data-purchase='{flagged}'] a.trace").click()
    row = find(b, f"#delivery-{flagged}")
    wait_until(lambda: "highlight" in (row.get_attribute("class") or ""), what="marked")
    assert console_errors(b) == []


def test_an_insurer_has_no_deliveries_form_nor_link(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        create_user(
            conn, username="insurer-dl", role=Role.INSURER, password=PASSWORD, insurer="平安财险"
        )
    sign_in_as(b, c, "insurer-dl", "/console/deliveries")
    find(b, "#dl-list")
    assert "/deliveries" not in nav(b)
    assert not b.find_elements(By.CSS_SELECTOR, "#dl-form, input[type=file]")
    assert console_errors(b) == []
