"""The regulator's view of today's daily checks (overdue first) and of 包保 coverage, with
the CSV and XLSX the region reports upward; nothing of another district shows."""

from __future__ import annotations

from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.types.json import Jsonb
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.auth.scope import SiteScope
from api.services.duties import DutySiteIn, set_duty_site
from bkcommon.timeutil import utcnow
from tests.console.conftest import Console, console_errors, shot, viewport
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import nav, sign_in_as
from tests.console.test_console_phone import PHONE, sideways

pytestmark = pytest.mark.slow

FETCH = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {credentials: "same-origin"}).then(async (r) => done(
  [r.status, r.headers.get("content-type"), r.headers.get("content-type").startsWith("text")
    ? await r.text() : String((await r.arrayBuffer()).byteLength)]));
"""


def test_regulator_sees_todays_checks_and_coverage_and_exports_them(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        for site, deadline in (("east-1", "23:59"), ("east-2", "00:00"), ("west-1", "00:00")):
            set_duty_site(
                conn,
                site_id=site,
                data=DutySiteIn(business_type="school_canteen", deadline_local=deadline),
                scope=SiteScope.everything(),
                actor="admin",
                now=utcnow(),
            )
        # east-2 serves breakfast 00:00-00:01 every day (samples due 01:01), nothing sampled
        conn.execute(
            "INSERT INTO meal_schedules (site_id, timezone, window_s, services) "
            "VALUES ('east-2', 'Asia/Shanghai', 3600, %s) ON CONFLICT (site_id) DO NOTHING",
            (Jsonb([{"meal": "breakfast", "start": "00:00", "end": "00:01",
                     "weekdays": [1, 2, 3, 4, 5, 6, 7]}]),),
        )  # fmt: skip
    late = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).time() >= time(1, 1)
    sign_in_as(b, c, "reg-east", "/console/coverage")
    find(b, "#duties-today tr[data-site-id]")
    assert "/coverage" in nav(b)
    rows = b.find_elements(By.CSS_SELECTOR, "#duties-today tr[data-site-id]")
    assert [(r.get_attribute("data-site-id"), r.get_attribute("data-state")) for r in rows] == [
        ("east-2", "overdue"),
        ("east-1", "pending"),
    ]
    assert "已超时" in rows[0].text
    samples = [r.find_element(By.CSS_SELECTOR, "td[data-meals-overdue]") for r in rows]
    assert samples[0].text == ("0/1 餐已留样 · 1 餐逾期未留样" if late else "0/1 餐已留样")
    assert samples[0].get_attribute("data-meals-overdue") == ("1" if late else "0")
    assert samples[1].text == "无餐次安排"
    assert "东区第二中学食堂" in rows[0].text
    cov = {
        r.get_attribute("data-site-id"): r.text
        for r in b.find_elements(By.CSS_SELECTOR, "#coverage-table tr[data-site-id]")
    }
    assert set(cov) == {"east-1", "east-2", "east-3"}
    assert "王食安" in cov["east-1"]
    assert "未指定" in cov["east-3"]
    totals = " ".join((text(b, "#coverage-totals") or "").split())
    assert "3 单位数" in totals
    assert "0/2 今日检查完成" in totals
    csv_href = find(b, "#coverage-csv").get_attribute("href")
    status, kind, body = b.execute_async_script(FETCH, csv_href)
    assert (status, kind.split(";")[0]) == (200, "text/csv")
    assert "东区第一小学食堂" in body
    assert "西区" not in body
    status, kind, size = b.execute_async_script(
        FETCH, find(b, "#coverage-xlsx").get_attribute("href")
    )
    assert status == 200
    assert "spreadsheetml" in kind
    assert int(size) > 1000
    shot(b, "coverage.png")
    assert console_errors(b) == []
    viewport(b, *PHONE, mobile=True)  # the same page on a cadre's phone: stacked rows
    try:
        b.refresh()
        find(b, "#coverage-table tr[data-site-id]")
        assert sideways(b) <= 0
        label = b.execute_script(
            "return getComputedStyle(document.querySelector("
            "'#coverage-table td[data-label]'), '::before').content"
        )
        assert "食品安全总监" in str(label)
        assert console_errors(b) == []
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_officer_is_not_offered_coverage(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    sign_in_as(b, c, "officer-e1", "/console/coverage")
    find(b, "main .error")
    assert "/coverage" not in nav(b)
    assert "您的角色不能" in (text(b, "main .error") or "")
    errors: list[Any] = console_errors(b)  # the refused request itself, nothing else
    assert len(errors) == 1
    assert "/supervision/coverage" in errors[0]
    assert "403" in errors[0]
