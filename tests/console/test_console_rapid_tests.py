"""The console's rapid-test page (快检), driven in Chromium against the real API and PostgreSQL.

An officer records a failed batch with a photo on a phone-sized screen and sees it in words,
the supplier's other delivery flagged, the month's statistics; a CSV import names its bad
row; a refused form is a sentence in Chinese; the page never scrolls sideways at 375 px.
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
from tests.console.conftest import PASSWORD, Console, console_errors, png_bytes, shot, viewport
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import nav, sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

LICENCE = "JY13301020000001"


def _type(b: WebDriver, field: str, value: str) -> None:
    el = find(b, f"#rt-{field}")
    el.clear()
    el.send_keys(value)


def test_officer_records_a_failed_batch_and_imports_a_csv(
    module_console: Console, module_browser: WebDriver, tmp_path: Path
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:  # the supplier's other delivery
        conn.execute(
            "INSERT INTO suppliers (licence_no, name) VALUES (%s, '东区蔬菜配送中心')", (LICENCE,)
        )
        conn.execute(
            """INSERT INTO purchases (site_id, supplier_licence, product, batch_no, delivered_on,
                   quantity, received_by)
               VALUES ('east-1', %s, '菠菜', 'P-2', %s, 12.5, '李收货')""",
            (LICENCE, (utcnow() - timedelta(days=2)).date()),
        )
    viewport(b, 375, 800, mobile=True)
    try:
        sign_in_as(b, c, "officer-e1", "/console/rapid-tests")
        find(b, "#rt-record")
        assert find(b, "#rt-photo").get_attribute("capture") == "environment"

        find(b, "#rt-save").click()  # nothing typed: refused as a sentence naming the field
        wait_until(lambda: "sample_no" in (text(b, "#rt-record-status") or ""), what="refusal")
        assert "填写的内容有误" in (text(b, "#rt-record-status") or "")
        refusals = console_errors(b)  # the browser logs the 422 itself: that one and no other
        assert len(refusals) == 1
        assert "rapid-tests" in refusals[0]
        assert "422" in refusals[0]

        _type(b, "sample_no", "S-001")
        _type(b, "product", "青菜")
        _type(b, "supplier_name", "东区蔬菜配送中心")
        _type(b, "supplier_licence", LICENCE)
        _type(b, "batch_no", "P-1")
        Select(find(b, "#rt-result")).select_by_value("fail")
        _type(b, "value", "63.5")
        _type(b, "limit", "50")
        _type(b, "unit", "%")
        photo = tmp_path / "strip.png"
        photo.write_bytes(png_bytes())
        find(b, "#rt-photo").send_keys(str(photo))
        find(b, "#rt-save").click()
        wait_until(
            lambda: b.find_elements(By.CSS_SELECTOR, "#rt-tests tr[data-result]"), what="row"
        )
        status = text(b, "#rt-record-status") or ""
        assert "已保存" in status, status
        assert "照片已保存" in status, status
        row = find(b, "#rt-tests tr[data-sample='S-001']")
        assert row.get_attribute("data-result") == "fail"
        assert "不合格" in row.text
        assert "农药残留" in row.text
        assert "东区第一小学食堂" in row.text
        assert row.find_elements(By.CSS_SELECTOR, "a[href$='/photo']")
        # on a phone each record reads as a card: every value beside its column's name
        labels = [td.get_attribute("data-label") for td in row.find_elements(By.CSS_SELECTOR, "td")]
        assert labels[:3] == ["检测时间", "单位", "样品名称"]
        flag = find(b, "#rt-flags tr[data-purchase]")
        assert "菠菜" in flag.text
        assert "东区第一小学食堂" in flag.text
        month = find(b, "#rt-stats tr[data-month]")
        assert "0.0%" in month.text
        assert "东区蔬菜配送中心 1" in month.text

        csv = tmp_path / "export.csv"
        csv.write_text(
            "样品编号,样品名称,检测项目,检测方法,检测结果,检测人,检测时间,单位编号\n"
            "S-002,猪肉,克伦特罗,胶体金,阴性,张检,2026-12-01 09:30,east-1\n"
            "S-003,带鱼,不存在的项目,试剂盒,合格,张检,2026-12-01 09:40,east-1\n",
            encoding="utf-8",
        )
        find(b, "#rt-csv").send_keys(str(csv))
        find(b, "#rt-import-go").click()
        wait_until(lambda: b.find_elements(By.CSS_SELECTOR, "#rt-import-table tr[data-row]"))
        assert "导入 1 条" in (text(b, "#rt-import-status") or "")
        bad = find(b, "#rt-import-table tr[data-row]")
        assert bad.get_attribute("data-row") == "2"
        assert bad.get_attribute("data-field") == "item"
        assert "检测项目" in bad.text
        wait_until(lambda: b.find_elements(By.CSS_SELECTOR, "#rt-tests tr[data-sample='S-002']"))
        assert "合格" in find(b, "#rt-tests tr[data-sample='S-002']").text

        wide = b.execute_script("return document.documentElement.scrollWidth")
        assert wide <= 375, f"the page scrolls sideways on a phone: {wide} px"
        b.execute_script("document.getElementById('rt-flags-h').scrollIntoView()")
        shot(b, "rapid-tests.png")
        find(b, "#lang-switch").click()  # the same page in English, result words included
        wait_until(lambda: (text(b, "h1") or "") == "Rapid tests", what="English")
        assert "fail" in find(b, "#rt-tests tr[data-sample='S-001']").text
        assert "pesticide residue" in find(b, "#rt-tests tr[data-sample='S-001']").text
        find(b, "#lang-switch").click()
        wait_until(lambda: (text(b, "h1") or "") == "快检", what="back to Chinese")
        assert console_errors(b) == []
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_an_insurer_reads_rapid_tests_but_is_offered_no_form(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        create_user(
            conn, username="insurer-rt", role=Role.INSURER, password=PASSWORD, insurer="平安财险"
        )
    sign_in_as(b, c, "insurer-rt", "/console/rapid-tests")
    find(b, "#rt-tests")
    assert "/rapid-tests" in nav(b)
    assert not b.find_elements(By.CSS_SELECTOR, "#rt-record, #rt-import, input[type=file]")
    assert console_errors(b) == []
