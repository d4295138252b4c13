"""The ticket page of a disinfection ticket: the cabinet's temperature and its smart plug's
power over the checked window, on one chart with two axes, labelled in Chinese and in
English, and readable on a phone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb
from selenium.webdriver.common.by import By

from api.services.tickets import process_findings
from bkcommon.timeutil import utcnow
from tests.console.conftest import Console, console_errors
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def _legend(b: Any) -> list[str]:
    return [
        e.text.strip()
        for e in b.find_elements(By.CSS_SELECTOR, "#ticket-cabinet-curve .u-legend .u-label")
    ]


def test_disinfection_ticket_shows_power_beside_temperature(console: Console, browser: Any) -> None:
    c, b = console, browser
    now = utcnow().replace(microsecond=0)
    meal_end = now - timedelta(hours=2)
    t0 = meal_end + timedelta(minutes=5)
    temps = [[(t0 + timedelta(minutes=i)).isoformat(), v] for i, v in enumerate([30, 45, 48, 48])]
    power = [
        [(t0 + timedelta(minutes=i)).isoformat(), w, round(w / 225, 3)]
        for i, w in enumerate([1500.0, 1510.0, 1495.0, 2.0])
    ]
    payload = {
        "sensor_id": "cab-e1",
        "rule": "disinfection_failed",
        "meal": "lunch",
        "meal_end": meal_end.isoformat(),
        "window_end": (meal_end + timedelta(hours=1)).isoformat(),
        "min_temp_c": 100.0,
        "min_hold_s": 600,
        "reason": "too_cool",
        "cycle": {"judged_by": "power_temperature", "peak_c": 48.0, "on_s": 180.0},
        "curve": temps,
        "power_curve": power,
    }
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sensors (id, site_id, name, profile, params) "
            "VALUES ('cab-e1', 'east-1', '消毒柜 1', 'disinfection', %s)",
            (Jsonb({"high_c": 150.0, "delay_s": 0}),),
        )
        conn.execute(
            """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier,
                   occurred_at, payload)
               VALUES ('dis-power-1', 'alarm_raised', 'east-1', 'cab-e1',
                       'disinfection_failed', 2, %s, %s)""",
            (meal_end + timedelta(hours=1), Jsonb(payload)),
        )
        process_findings(conn, now=now, settings=c.settings)
        row = conn.execute(
            "SELECT id FROM tickets WHERE subject = 'cab-e1' AND rule = 'disinfection_failed'"
        ).fetchone()
    assert row is not None
    b.set_window_size(375, 900)
    sign_in_as(b, c, "officer-e1", f"/console/tickets/{row[0]}")
    chart = find(b, "#ticket-cabinet-curve .uchart")
    assert (chart.get_attribute("data-temps"), chart.get_attribute("data-power")) == ("4", "4")
    assert text(b, "#cabinet-curve-h") == "消毒柜在检查时段的温度与功率"
    wait_until(lambda: len(_legend(b)) == 3, what="three legend entries")
    assert _legend(b)[1:] == ["温度 (°C)", "功率 (W)"]
    assert "插座功率" in (text(b, "#cabinet-curve-hint") or "")
    # both value axes are drawn (°C left, W right) and the chart fits a phone's width
    axes = b.find_elements(By.CSS_SELECTOR, "#ticket-cabinet-curve .u-axis")
    assert len(axes) == 3
    width = b.execute_script("return document.documentElement.scrollWidth")
    assert width <= 375

    find(b, "#lang-switch").click()
    wait_until(lambda: text(b, "#logout") == "Sign out", what="English labels")
    wait_until(
        lambda: (
            text(b, "#cabinet-curve-h") == "Cabinet temperature and power over the checked window"
        ),
        what="English chart title",
    )
    wait_until(lambda: _legend(b)[1:] == ["Temperature (°C)", "Power (W)"], what="English legend")
    assert "what its plug draws" in (text(b, "#cabinet-curve-hint") or "")
    assert console_errors(b) == []
