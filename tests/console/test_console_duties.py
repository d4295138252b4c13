"""The officer's daily duties on a phone: the checklist with a camera photo behind each "no"
(a ticket follows), the morning health check marking a feverish cook off duty, and a meal's
food samples, with the API's refusal of a light sample shown as a sentence."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
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
from tests.console.conftest import Console, console_errors, png_bytes, shot, viewport
from tests.console.test_console_browser import attr, find, text
from tests.console.test_console_pages import nav, sign_in_as
from tests.console.test_console_phone import PHONE, sideways
from tests.support.services import wait_until

pytestmark = pytest.mark.slow
EVERY_DAY = [1, 2, 3, 4, 5, 6, 7]


def _keep_duties(conn: psycopg.Connection[Any], now: datetime) -> None:
    """east-1 keeps the school canteen's daily duties, its check due at 10:00."""
    set_duty_site(
        conn,
        site_id="east-1",
        data=DutySiteIn(business_type="school_canteen", deadline_local="10:00"),
        scope=SiteScope.everything(),
        actor="admin",
        now=now,
    )


def test_officer_does_the_days_duties_on_a_phone(
    module_console: Console, module_browser: WebDriver, tmp_path: Path
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        _keep_duties(conn, utcnow())
        # lunch at 00:00 (its samples due at 01:01) and dinner at 23:58 (due after midnight)
        conn.execute(
            "INSERT INTO meal_schedules (site_id, timezone, window_s, services) "
            "VALUES ('east-1', 'Asia/Shanghai', 3600, %s) ON CONFLICT (site_id) DO NOTHING",
            (Jsonb([{"meal": "lunch", "start": "00:00", "end": "00:01", "weekdays": EVERY_DAY},
                    {"meal": "dinner", "start": "23:58", "end": "23:59", "weekdays": EVERY_DAY}]),),
        )  # fmt: skip
    lunch_overdue = utcnow().astimezone(ZoneInfo("Asia/Shanghai")).time() >= time(1, 1)
    photo = tmp_path / "pests.png"
    photo.write_bytes(png_bytes(120, 90))
    viewport(b, *PHONE, mobile=True)
    try:
        sign_in_as(b, c, "officer-e1", "/console/duties")
        find(b, "#duty-check-form .duty-item")
        assert "/duties" in nav(b)
        items = b.find_elements(By.CSS_SELECTOR, "#duty-check-form .duty-item")
        assert len(items) >= 9
        assert "从业人员晨检已完成并记录" in (text(b, "#duty-check-form") or "")
        for li in items:
            key = li.get_attribute("data-item")
            choice = "no" if key == "pests_controlled" else "yes"
            find(b, f"#ans-{key}-{choice}").click()
        camera = find(b, "#photo-pests_controlled")
        assert camera.get_attribute("accept") == "image/*"
        assert camera.get_attribute("capture") == "environment"
        find(b, "#duty-check-submit").click()  # a "no" without its photo is stopped here
        wait_until(lambda: "请先拍照" in (text(b, "#duty-check-status") or ""), what="need photo")
        find(b, "#note-pests_controlled").send_keys("仓库角落发现鼠粪")
        camera.send_keys(str(photo))
        find(b, "#duty-check-submit").click()
        wait_until(lambda: b.find_elements(By.ID, "duty-check-done"), timeout=15, what="check")
        assert "1 项不合格" in (text(b, "#duty-check-done") or "")
        assert "王食安" in (text(b, "#duty-check-done") or "")  # the officer by name
        no = find(b, '#duty-answers li[data-ok="false"]')
        assert "无蝇鼠蟑" in no.text
        assert "rodents" not in no.text  # worded in the reader's language only
        assert "仓库角落发现鼠粪" in no.text

        find(b, "#staff-name-0").send_keys("李厨师")
        find(b, "#staff-temp-0").send_keys("36.5")
        find(b, "#add-staff").click()
        find(b, "#staff-name-1").send_keys("张帮厨")
        find(b, "#staff-temp-1").send_keys("38.1")
        find(b, "#health-submit").click()
        wait_until(
            lambda: len(b.find_elements(By.CSS_SELECTOR, "#health-list li[data-on-duty]")) == 2,
            what="health list",
        )
        off = find(b, '#health-list li[data-on-duty="false"]')
        assert "张帮厨" in off.text
        assert "发热" in off.text
        assert "今日离岗" in off.text

        # the day's meals, and the form starts on the first one still to be sampled
        due = {
            li.get_attribute("data-meal"): li
            for li in b.find_elements(By.CSS_SELECTOR, "#meal-due li")
        }
        assert list(due) == ["lunch", "dinner"]
        assert due["lunch"].get_attribute("data-state") == (
            "overdue" if lunch_overdue else "pending"
        )
        assert "01:01" in due["lunch"].text
        assert due["dinner"].get_attribute("data-state") == "pending"
        assert "晚餐 23:58–23:59 · 请于 00:59 前留样" in due["dinner"].text
        assert find(b, "#sample-meal").get_attribute("value") == "lunch"
        find(b, "#dish-0").send_keys("红烧肉")
        find(b, "#dish-g-0").send_keys("150")
        find(b, "#dish-1").send_keys("清炒时蔬")
        find(b, "#dish-g-1").send_keys("100")
        find(b, "#samples-submit").click()
        wait_until(lambda: "填写的内容有误" in (text(b, "#samples-status") or ""), what="refusal")
        assert "weight_g" in (text(b, "#samples-status") or "")
        refused = console_errors(b)  # the browser logs the refused request: that one only
        assert len(refused) == 1
        assert "food-samples" in refused[0]
        assert "422" in refused[0]
        weight = find(b, "#dish-g-1")
        weight.clear()
        weight.send_keys("130")
        find(b, "#samples-submit").click()
        wait_until(
            lambda: len(b.find_elements(By.CSS_SELECTOR, "#sample-list li[data-meal]")) == 2,
            what="samples",
        )
        assert "午餐" in (text(b, "#sample-list") or "")
        wait_until(
            lambda: attr(b, "#meal-due li[data-meal='lunch']", "data-state") == "sampled",
            what="lunch sampled",
        )
        assert "已留样 2 道菜" in find(b, "#meal-due li[data-meal='lunch']").text
        assert find(b, "#sample-meal").get_attribute("value") == "dinner"
        assert sideways(b) <= 0
        b.execute_script("window.scrollTo(0, 0)")
        shot(b, "phone-duties.png")
        assert console_errors(b) == []
        find(b, "#lang-switch").click()  # the same records read in English
        wait_until(lambda: "Daily check" in (text(b, "#duty-check-h") or ""), what="English")
        assert "off duty today" in (text(b, "#health-list") or "")
        assert "lunch" in (text(b, "#sample-list") or "")
        find(b, "#lang-switch").click()
        wait_until(lambda: "每日检查" in (text(b, "#duty-check-h") or ""), what="Chinese again")
        assert console_errors(b) == []
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    with psycopg.connect(
        c.db_url
    ) as conn:  # the ticket engine (workers, off here) opens its ticket
        findings = conn.execute(
            "SELECT subject FROM findings WHERE site_id = 'east-1' AND rule = 'daily_check_no'"
        ).fetchall()
    assert findings == [("pests_controlled",)]


def test_site_without_duties_says_so(module_console: Console, module_browser: WebDriver) -> None:
    c, b = module_console, module_browser
    sign_in_as(b, c, "reg-east", "/console/duties?site_id=east-3")
    find(b, "#duty-none")
    assert "尚未设置每日食安职责" in (text(b, "#duty-none") or "")
    assert "/duties" not in nav(b)
    assert console_errors(b) == []


def test_meals_of_a_schedule_in_another_zone_are_sampled_under_their_own_date(
    module_console: Console, module_browser: WebDriver
) -> None:
    """The officer samples 'today's' lunch of a schedule whose zone is on another date than
    China's: the sample is recorded under the meal's date, so the check sees it."""
    c, b = module_console, module_browser
    now = utcnow()
    # 20 h behind China's zone before 20:00 China time, 6 h ahead after: never China's date
    china_hour = now.astimezone(ZoneInfo("Asia/Shanghai")).hour
    zone = "Etc/GMT+12" if china_hour < 20 else "Etc/GMT-14"
    theirs = now.astimezone(ZoneInfo(zone)).date()
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        _keep_duties(conn, now)
        old = conn.execute(
            "SELECT timezone, services FROM meal_schedules WHERE site_id = 'east-1'"
        ).fetchone()
        conn.execute(
            "INSERT INTO meal_schedules (site_id, timezone, window_s, services) "
            "VALUES ('east-1', %s, 3600, %s) ON CONFLICT (site_id) DO UPDATE "
            "SET timezone = EXCLUDED.timezone, services = EXCLUDED.services",
            (zone, Jsonb([{"meal": "lunch", "start": "00:00", "end": "00:01",
                           "weekdays": EVERY_DAY}])),
        )  # fmt: skip
    try:
        sign_in_as(b, c, "officer-e1", "/console/duties")
        wait_until(lambda: b.find_elements(By.CSS_SELECTOR, "#meal-due li"), what="meals")
        listed = b.find_elements(By.CSS_SELECTOR, "#meal-due li")
        assert [li.get_attribute("data-meal") for li in listed] == ["lunch"]
        find(b, "#dish-0").send_keys("番茄炒蛋")
        find(b, "#dish-g-0").send_keys("150")
        find(b, "#samples-submit").click()
        wait_until(
            lambda: attr(b, "#meal-due li[data-meal='lunch']", "data-state") == "sampled",
            what="lunch sampled",
        )
        assert "番茄炒蛋" in (text(b, "#sample-list") or "")  # listed under the meal's date
        assert console_errors(b) == []
        with psycopg.connect(c.db_url) as conn:
            dates = conn.execute(
                "SELECT meal_date FROM food_samples "
                "WHERE site_id = 'east-1' AND meal = 'lunch' AND dish = '番茄炒蛋'"
            ).fetchall()
        assert dates == [(theirs,)]
    finally:
        with psycopg.connect(c.db_url, autocommit=True) as conn:
            if old is None:
                conn.execute("DELETE FROM meal_schedules WHERE site_id = 'east-1'")
            else:
                conn.execute(
                    "UPDATE meal_schedules SET timezone = %s, services = %s "
                    "WHERE site_id = 'east-1'",
                    (old[0], Jsonb(old[1])),
                )


def test_overview_shows_todays_duties_to_the_officer_and_totals_to_the_regulator(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        _keep_duties(conn, utcnow())
        keeping = conn.execute(
            "SELECT count(*) FROM duty_sites d JOIN sites s ON s.id = d.site_id "
            "WHERE s.region_id = 'd-east'"
        ).fetchone()
    assert keeping is not None
    sign_in_as(b, c, "officer-e1", "/console/")
    line = find(b, "#duty-today li[data-site-id='east-1']")
    assert "东区第一小学食堂" in line.text
    assert "日管控" in line.text  # done at HH:MM, due by HH:MM or overdue: in words
    link = line.find_element(By.CSS_SELECTOR, "a")
    assert (link.get_attribute("href") or "").endswith("/console/duties?site_id=east-1")
    sign_in_as(b, c, "reg-east", "/console/")
    summary = text(b, "#duty-summary") or find(b, "#duty-summary").text
    assert summary.startswith("日管控已完成 "), summary
    assert f"/{keeping[0]} 家" in summary, summary  # the district's totals, not a long list
    assert console_errors(b) == []
