"""The console's disinfection ledger page: an officer sees its canteen's cycles and checks,
in Chinese, with the exports, and nothing of another canteen."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from selenium.webdriver.common.by import By

from bkcommon.timeutil import utcnow
from tests.console.conftest import Console, console_errors
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import sign_in_as

pytestmark = pytest.mark.slow


def test_officer_reads_its_disinfection_ledger(console: Console, browser: Any) -> None:
    c, b = console, browser
    start = utcnow().replace(microsecond=0) - timedelta(hours=3)
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sensors (id, site_id, name, profile, params) "
            "VALUES ('cab-e1', 'east-1', '消毒柜 1', 'disinfection', '{}')"
        )
        for site, sensor, verdict, peak in (
            ("east-1", "cab-e1", "valid", 104.5),
            ("east-1", "cab-e1", "too_short", 101.0),
            ("east-2", "cab-e2", "too_cool", 90.0),
        ):
            conn.execute(
                """INSERT INTO disinfection_cycles (sensor_id, site_id, started_at, ended_at,
                       peak_c, held_s, verdict, min_temp_c, min_hold_s)
                   VALUES (%s, %s, %s, %s, %s, 660, %s, 100, 600)""",
                (sensor, site, start, start + timedelta(minutes=20), peak, verdict),
            )
            start += timedelta(minutes=30)
        conn.execute(
            """INSERT INTO disinfection_checks (sensor_id, site_id, service_date, meal, meal_start,
                   meal_end, window_end, outcome, checked_at)
               VALUES ('cab-e1', 'east-1', current_date, 'lunch', %s, %s, %s, 'missed', %s)""",
            (
                start - timedelta(hours=3),
                start - timedelta(hours=2),
                start - timedelta(hours=1),
                start,
            ),
        )
    sign_in_as(b, c, "officer-e1", "/console/disinfection")
    find(b, "#dis-cycles tr[data-verdict]")
    verdicts = [
        r.get_attribute("data-verdict")
        for r in b.find_elements(By.CSS_SELECTOR, "#dis-cycles tr[data-verdict]")
    ]
    assert sorted(verdicts) == ["too_short", "valid"]
    sites = {
        r.get_attribute("data-site-id")
        for r in b.find_elements(By.CSS_SELECTOR, "tr[data-site-id]")
    }
    assert sites == {"east-1"}
    assert "未消毒" in (text(b, "#dis-checks") or "")
    assert "消毒柜 1" in (text(b, "#dis-checks") or "")  # the cabinet by its name, not its id
    assert "cab-e1" not in (text(b, "#dis-checks") or "")
    assert "时间不足" in (text(b, "#dis-cycles") or "")
    csv = find(b, "#dis-csv").get_attribute("href")
    assert "/api/v1/disinfection/cycles.csv?" in str(csv)
    assert "lang=zh-CN" in str(csv)
    assert console_errors(b) == []
