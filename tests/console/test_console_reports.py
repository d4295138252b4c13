"""The director's week and month: the weekly review with the week's figures, the monthly
report generated from the month's records, edited, then signed and read-only; the officer
edits a draft but is offered no signature and no review form."""

from __future__ import annotations

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.auth.scope import Role
from api.auth.users import create_user
from tests.console.conftest import PASSWORD, Console, console_errors, shot
from tests.console.test_console_browser import attr, find, text
from tests.console.test_console_pages import nav, sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def test_officer_edits_the_draft_and_the_director_reviews_and_signs(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        create_user(
            conn, username="director-e1", role=Role.DIRECTOR, password=PASSWORD,
            person_id="officer-1",
        )  # fmt: skip
    sign_in_as(b, c, "officer-e1", "/console/reports")
    find(b, "#generate-form")
    assert "/reports" in nav(b)
    assert not b.find_elements(By.ID, "review-form")  # the weekly review is the director's
    month = str(find(b, "#report-month").get_attribute("value"))
    find(b, "#report-generate").click()
    body = find(b, f"textarea#report-body-{month}")
    assert "日管控" in str(body.get_attribute("value"))
    assert "整改单" in (text(b, f"#report-figures-{month}") or "")
    assert not b.find_elements(By.ID, f"report-sign-{month}")
    body.send_keys("\n下月措施：更换冷藏柜门封条")
    find(b, f"#report-save-{month}").click()
    wait_until(
        lambda: (
            "更换冷藏柜门封条"
            in str(
                b.execute_script(
                    "return window.__edited = document.querySelector('textarea.report-body').value"
                )
            )
        ),
        what="edit kept",
    )
    assert console_errors(b) == []

    sign_in_as(b, c, "director-e1", "/console/reports")
    find(b, "#review-form")
    find(b, "#review-findings").send_keys("凉菜间紫外灯未开启")
    find(b, "#review-measures").send_keys("每日开餐前检查紫外灯")
    find(b, "#review-submit").click()
    wait_until(
        lambda: b.find_elements(By.CSS_SELECTOR, "#review-list li[data-week]"), what="review"
    )
    assert "凉菜间紫外灯未开启" in (text(b, "#review-list") or "")
    find(b, "#review-findings").send_keys("再次提交")
    find(b, "#review-submit").click()  # the same week twice: refused in words
    wait_until(lambda: "已" in (text(b, "#review-status") or ""), what="refusal")
    assert attr(b, "#review-status", "class") == "error"
    # the refused second review of the week (and the officer's page being signed out: 401)
    refused = [e for e in console_errors(b) if "status of 401" not in e]
    assert refused
    assert all("weekly-reviews" in e and "409" in e for e in refused), refused

    saved = find(b, f"#report-body-{month}").get_attribute("value")
    assert "更换冷藏柜门封条" in str(saved)
    b.execute_script("window.confirm = () => true")
    find(b, f"#report-sign-{month}").click()
    wait_until(
        lambda: attr(b, f"#report-list li[data-month='{month}']", "data-signed") == "true",
        what="signed",
    )
    assert "director-e1" in (text(b, f"#report-state-{month}") or "")
    assert find(b, f"#report-body-{month}").get_attribute("readonly") is not None
    assert not b.find_elements(By.ID, f"report-sign-{month}")
    assert not b.find_elements(By.ID, f"report-save-{month}")
    b.execute_script("document.getElementById('monthly-h').scrollIntoView()")
    shot(b, "reports.png")
    assert console_errors(b) == []
    with psycopg.connect(c.db_url) as conn:
        row = conn.execute(
            "SELECT signed_by, body LIKE '%%更换冷藏柜门封条%%' FROM monthly_reports"
        ).fetchone()
    assert row == ("director-e1", True)
