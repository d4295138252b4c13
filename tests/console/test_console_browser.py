"""The regulator console in a real headless Chromium against the real API and PostgreSQL."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from tests.console.conftest import PASSWORD, Console, console_errors, png_bytes
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def nav_menus(driver: WebDriver) -> list[str | list[str]]:
    """The header's navigation as shown: a link's words, or a menu's name and its links."""
    return list(
        driver.execute_script(
            """return [...document.querySelectorAll('header nav > ul > li')].map((li) => {
                 const d = li.querySelector('details');
                 return d ? [d.querySelector('summary').textContent,
                             ...[...d.querySelectorAll('a')].map((a) => a.textContent)]
                          : li.textContent; });"""
        )
    )


def find(driver: WebDriver, css: str, timeout: float = 20.0) -> Any:
    """The first element matching ``css``, waiting for it to appear."""
    found: list[Any] = []

    def present() -> bool:
        found[:] = driver.find_elements(By.CSS_SELECTOR, css)
        return bool(found)

    wait_until(present, timeout=timeout, what=css)
    return found[0]


def text(driver: WebDriver, css: str) -> str | None:
    """The text of the first element matching ``css`` now (None when absent); never stale."""
    found = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css
    )
    return None if found is None else str(found).strip()


def attr(driver: WebDriver, css: str, name: str) -> str | None:
    """An attribute of the first element matching ``css`` now (None when absent); never stale."""
    found = driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return e ? e.getAttribute(arguments[1]) : null;",
        css,
        name,
    )
    return None if found is None else str(found)


def sign_in(driver: WebDriver, console: Console, username: str, path: str = "/console/") -> None:
    """Open ``path``, sign in through the form and wait for the signed-in header."""
    driver.get(console.url + path)
    find(driver, "#username").send_keys(username)
    find(driver, "#password").send_keys(PASSWORD)
    find(driver, "#login-submit").click()
    wait_until(lambda: driver.find_elements(By.ID, "logout"), timeout=20, what="signed in")


def test_regulator_sees_only_its_district_with_status_colours(
    console: Console, browser: WebDriver, tmp_path: Path
) -> None:
    sign_in(browser, console, "reg-east")
    find(browser, "#sites-table tr.site-row")
    rows = browser.find_elements(By.CSS_SELECTOR, "#sites-table tr.site-row")
    states = {r.get_attribute("data-site-id"): r.get_attribute("data-state") for r in rows}
    assert states == {"east-1": "red", "east-2": "amber", "east-3": "green"}
    page = browser.page_source
    assert "west-1" not in page
    assert "西区实验学校食堂" not in page
    assert (text(browser, "#user") or "").startswith("reg-east")
    assert text(browser, "#user-role") == "监管人员"
    first = rows[0].get_attribute("data-site-id")
    assert first == "east-1"  # worst first
    browser.save_screenshot(str(tmp_path / "overview.png"))

    # sort by open tickets, ascending then descending; then filter by name
    def order() -> list[str | None]:
        return [
            r.get_attribute("data-site-id")
            for r in browser.find_elements(By.CSS_SELECTOR, "#sites-table tr.site-row")
        ]

    find(browser, "th[data-key='open_tickets'] button").click()
    assert order() == ["east-3", "east-2", "east-1"]
    assert attr(browser, "th[data-key='open_tickets']", "aria-sort") == "ascending"
    find(browser, "th[data-key='open_tickets'] button").click()
    assert order() == ["east-1", "east-2", "east-3"]
    find(browser, "#site-filter").send_keys("幼儿园")
    wait_until(lambda: order() == ["east-3"], what="filtered to east-3")

    # English: the labels change, the data stays
    find(browser, "#lang-switch").click()
    wait_until(lambda: text(browser, "#logout") == "Sign out", what="English labels")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    wait_until(lambda: text(browser, "h1") == "Canteens at a glance", what="English title")
    assert text(browser, "#user-role") == "Regulator"
    assert nav_menus(browser) == [
        "Overview",
        "Rectification ledger",
        [
            "Supervision",
            "Capture review",
            "Complaints",
            "Inspections",
            "Visits",
            "Coverage",
            "Wall screen",
            "Kitchen display",
        ],
        ["Records", "Rapid tests", "Deliveries", "Insurance"],
        ["Settings", "Public pages", "Users & settings"],
    ]

    # the choice survives a reload; sign out returns to the sign-in form
    browser.refresh()
    wait_until(lambda: text(browser, "#logout") == "Sign out", what="English kept")
    find(browser, "#logout").click()
    find(browser, "#login-form")
    browser.get(console.url + "/console/tickets")
    find(browser, "#login-form")  # the session is revoked
    assert console_errors(browser) == []


def test_ticket_detail_shows_timeline_escalation_and_evidence(
    console: Console, browser: WebDriver, tmp_path: Path
) -> None:
    tid = console.world.tickets["east-1:temp_high"]
    sign_in(browser, console, "reg-east", "/console/tickets")
    find(browser, f"#tickets-table tr[data-ticket-id='{tid}'] a").click()
    find(browser, "#timeline li")
    assert browser.current_url.endswith(f"/console/tickets/{tid}")
    kinds = [
        li.get_attribute("data-kind")
        for li in browser.find_elements(By.CSS_SELECTOR, "#timeline li")
    ]
    assert kinds[0] == "opened"
    with psycopg.connect(console.db_url, autocommit=True) as conn:  # the ladder's 4th rung
        conn.execute("UPDATE tickets SET escalation_level = 4 WHERE id = %s", (tid,))
    browser.refresh()
    wait_until(lambda: text(browser, "#escalation-level") == "第 4 级 · 升级至监管", what="words")
    assert "系统自动" in (text(browser, "#timeline li:first-child .actor") or "")  # not "system"
    assert attr(browser, "#ticket-status", "data-status") == "open"
    assert "已逾期" in (text(browser, "h1") or "")
    img = find(browser, "#evidence img.evidence-img")
    assert console.world.evidence_sha in (img.get_attribute("src") or "")
    wait_until(
        lambda: (
            browser.execute_script(
                "const i = document.querySelector('#evidence img');"
                "return i.complete && i.naturalWidth;"
            )
            == 64
        ),
        what="evidence image loaded",
    )
    buttons = {
        b.get_attribute("id")
        for b in browser.find_elements(By.CSS_SELECTOR, "#action-buttons button")
    }
    assert buttons == {"act-acknowledge", "act-close"}  # a regulator's (no close proposed by data)
    # closing needs a reason: the console says so and nothing changes
    find(browser, "#act-close").click()
    wait_until(lambda: text(browser, "#action-message") == "此操作需要填写说明或理由。")
    assert attr(browser, "#ticket-status", "data-status") == "open"
    browser.save_screenshot(str(tmp_path / "ticket.png"))
    assert console_errors(browser) == []

    # an unknown or out-of-scope ticket is "not found"
    west = console.world.tickets["west-1:temp_high"]
    browser.get(f"{console.url}/console/tickets/{west}")
    wait_until(lambda: "未找到" in (text(browser, "main .error") or ""), what="not found")


def test_officer_acknowledges_and_the_status_changes(
    console: Console, browser: WebDriver, tmp_path: Path
) -> None:
    tid = console.world.tickets["east-1:temp_high"]
    sign_in(browser, console, "officer-e1", f"/console/tickets/{tid}")
    find(browser, "#act-acknowledge")
    assert text(browser, "#user-role") == "食品安全员"
    find(browser, "#action-note").send_keys("已安排维修冷藏柜")
    find(browser, "#act-acknowledge").click()
    wait_until(
        lambda: attr(browser, "#ticket-status", "data-status") == "acknowledged",
        what="acknowledged",
    )
    assert text(browser, "#action-message") == "已完成：接收"
    assert attr(browser, "#timeline li:last-child", "data-kind") == "acknowledged"
    last = text(browser, "#timeline li:last-child") or ""
    assert "已安排维修冷藏柜" in last
    assert "王食安" in last  # the person the officer's account belongs to, not the username
    assert attr(browser, "#timeline li:last-child .actor", "title") == "officer-e1"
    with psycopg.connect(console.db_url) as conn:
        row = conn.execute("SELECT status FROM tickets WHERE id = %s", (tid,)).fetchone()
    assert row == ("acknowledged",)
    # what is allowed next comes from the API: rectify, with a note and a photo
    assert browser.find_elements(By.ID, "act-acknowledge") == []
    photo = tmp_path / "fixed.png"
    photo.write_bytes(png_bytes(80, 60))
    find(browser, "#action-note").send_keys("压缩机已更换，温度恢复正常")
    find(browser, "#act-rectify").click()  # no photo yet: refused in the page
    wait_until(lambda: text(browser, "#action-message") == "提交整改需要至少一张照片。")
    find(browser, "#action-photos").send_keys(str(photo))
    find(browser, "#act-rectify").click()
    wait_until(
        lambda: attr(browser, "#ticket-status", "data-status") == "rectified", what="rectified"
    )
    wait_until(
        lambda: (
            browser.execute_script(
                "return [...document.querySelectorAll('#evidence img')].map(i => i.naturalWidth)"
            )
            == [64, 80]
        ),
        what="both photos shown",
    )


def _downloaded(folder: Path) -> Path:
    done: list[Path] = []

    def ready() -> bool:
        done[:] = [p for p in folder.iterdir() if p.suffix == ".csv"]
        return bool(done)

    wait_until(ready, timeout=10, what="CSV download")
    return done[0]


def _export_csv(browser: WebDriver, downloads: Path) -> list[dict[str, str]]:
    """Click the ledger's CSV export (the downloads folder emptied first) and read its rows."""
    for p in downloads.iterdir():
        p.unlink()
    find(browser, "#export-csv").click()
    path = _downloaded(downloads)
    wait_until(lambda: not list(downloads.glob("*.crdownload")), what="download finished")
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def test_ledger_filters_and_csv_export_match(
    console: Console, browser: WebDriver, downloads: Path
) -> None:
    sign_in(browser, console, "reg-east", "/console/tickets")
    find(browser, "#tickets-table tr[data-ticket-id]")
    shown = {
        int(r.get_attribute("data-ticket-id") or 0)
        for r in browser.find_elements(By.CSS_SELECTOR, "#tickets-table tr[data-ticket-id]")
    }
    w = console.world.tickets
    assert shown == {w["east-1:temp_high"], w["east-1:no_mask"], w["east-2:temp_high"]}
    assert text(browser, "#ticket-count") == "共 3 条"

    # filter: east-1, overdue only
    Select(find(browser, "#f-site_id")).select_by_value("east-1")
    find(browser, "#f-overdue").click()
    find(browser, "#f-apply").click()
    wait_until(lambda: "overdue=1" in browser.current_url, what="filter in the URL")
    wait_until(lambda: text(browser, "#ticket-count") == "共 1 条", what="filtered list")
    rows = browser.find_elements(By.CSS_SELECTOR, "#tickets-table tr[data-ticket-id]")
    assert [r.get_attribute("data-ticket-id") for r in rows] == [str(w["east-1:temp_high"])]

    table = _export_csv(browser, downloads)
    assert [r["ticket_no"] for r in table] == [rows[0].find_element(By.TAG_NAME, "a").text]
    assert table[0]["site_id"] == "east-1"
    assert table[0]["site_name"] == "东区第一小学食堂"
    assert table[0]["overdue"] == "true"
    assert table[0]["status"] == "open"

    # by status across the district: never the other district's tickets
    browser.get(console.url + "/console/tickets?status=open")
    wait_until(lambda: text(browser, "#ticket-count") == "共 3 条", what="open tickets")
    table = _export_csv(browser, downloads)
    assert sorted(r["site_id"] for r in table) == ["east-1", "east-1", "east-2"]
    assert {r["status"] for r in table} == {"open"}

    # by source (what opened the ticket): the camera's violations only, list and export alike
    browser.get(console.url + "/console/tickets")
    source = Select(find(browser, "#f-source"))
    assert "视频违规" in [o.text for o in source.options]  # words, not codes
    source.select_by_value("violation")
    find(browser, "#f-apply").click()
    wait_until(lambda: "source=violation" in browser.current_url, what="source in the URL")
    wait_until(lambda: text(browser, "#ticket-count") == "共 1 条", what="violations only")
    rows = browser.find_elements(By.CSS_SELECTOR, "#tickets-table tr[data-ticket-id]")
    assert [r.get_attribute("data-ticket-id") for r in rows] == [str(w["east-1:no_mask"])]
    table = _export_csv(browser, downloads)
    assert [(r["site_id"], r["rule"]) for r in table] == [("east-1", "no_mask")]


def test_site_page_draws_sensors_and_review_queue(
    console: Console, browser: WebDriver, tmp_path: Path
) -> None:
    sign_in(browser, console, "reg-east", "/console/sites/east-1")
    chart = find(browser, "li[data-sensor-id='fridge-e1'] .uchart canvas")
    assert chart.size["width"] > 200
    points = int(attr(browser, "li[data-sensor-id='fridge-e1'] .uchart", "data-points") or 0)
    assert points >= 100  # 24 h of 10-minute readings in 5-minute buckets
    assert browser.find_elements(By.CSS_SELECTOR, "li[data-sensor-id='freezer-e1'] .no-readings")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#site-tickets li")) == 2
    assert (text(browser, "#risk-now") or "").isdigit()
    browser.save_screenshot(str(tmp_path / "site.png"))

    find(browser, "details[data-group='nav_g_supervise'] > summary").click()  # the 监管 menu
    find(browser, "header nav a[href='/console/reviews']").click()
    find(browser, "#reviews li[data-review-id]")
    reviews = [
        int(li.get_attribute("data-review-id") or 0)
        for li in browser.find_elements(By.CSS_SELECTOR, "#reviews li[data-review-id]")
    ]
    assert len(reviews) == 2
    first, second = reviews
    find(browser, f"#dismiss-{first}").click()  # no reason: refused in the page
    wait_until(lambda: text(browser, "#review-message") == "驳回需要填写理由。")
    find(browser, f"#reason-{first}").send_keys("反光，不是违规")
    find(browser, f"#dismiss-{first}").click()
    wait_until(lambda: not browser.find_elements(By.ID, f"dismiss-{first}"), what="dismissed")
    find(browser, f"#confirm-{second}").click()
    wait_until(lambda: not browser.find_elements(By.ID, f"confirm-{second}"), what="confirmed")
    with psycopg.connect(console.db_url) as conn:
        rows = conn.execute(
            "SELECT id, status, reason, reviewed_by FROM capture_reviews ORDER BY id"
        ).fetchall()
    assert rows == [
        (first, "dismissed", "反光，不是违规", "reg-east"),
        (second, "confirmed", None, "reg-east"),
    ]
    assert console_errors(browser) == []


def test_a_title_stored_with_a_rules_former_words_reads_in_todays(
    console: Console, browser: WebDriver
) -> None:
    """Both disinfection rules were 餐具消毒不到位 in Chinese; a ticket titled then still splits
    into the reader's language, in today's words (labels.js ticketTitle, FORMER_RULE_LABELS)."""
    with psycopg.connect(console.db_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO tickets (ticket_no, site_id, source, rule, subject, tier, status, title,
                                   opened_at, due_at, last_occurrence_at)
               VALUES ('ZG-20261201-900', 'east-1', 'alarm', 'disinfection_missed', 'cab-9', 2,
                       'open', '餐具消毒不到位 tableware not disinfected after the meal: 消毒柜 9',
                       now(), now() + interval '3 days', now())"""
        )
    sign_in(browser, console, "reg-east", "/console/tickets")
    wait_until(lambda: "餐具未消毒: 消毒柜 9" in (text(browser, "#tickets-table") or ""))
    assert "tableware" not in (text(browser, "#tickets-table") or "")
    assert "未升级" in (text(browser, "#tickets-table") or "")  # the level in words, not "0"
    assert console_errors(browser) == []


def test_a_missed_duty_ticket_says_which_meal_it_was(console: Console, browser: WebDriver) -> None:
    from api.services.tickets import process_findings
    from api.settings import ApiSettings
    from bkcommon.timeutil import utcnow

    with psycopg.connect(console.db_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                     payload)
               VALUES ('food_sample_missed:east-1:2026-12-02:lunch', 'manual', 'east-1',
                       'food_sample', 'food_sample_missed', 2, now(),
                       '{"meal_date": "2026-12-02", "meal": "lunch"}')"""
        )
        process_findings(conn, now=utcnow(), settings=ApiSettings())
        (tid,) = conn.execute(
            "SELECT id FROM tickets WHERE rule = 'food_sample_missed'"
        ).fetchone() or (None,)
    assert tid is not None
    sign_in(browser, console, "reg-east", f"/console/tickets/{tid}")
    wait_until(lambda: text(browser, "#ticket-missed") == "午餐 · 2026-12-02", what="the meal")
    assert "未留样的餐次" in (text(browser, "#ticket-facts") or "")
    assert console_errors(browser) == []
