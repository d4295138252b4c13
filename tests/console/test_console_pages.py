"""The pages beyond the overview: inspections, insurance, users & settings, capture review.

Each role signs in to one shared Chromium against one server: every page renders with no
console errors, only the actions the role may take are offered, a refusal reads in the
user's language, and what is done in the page lands in the database.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from openpyxl import load_workbook
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from api.auth.scope import Role
from api.auth.users import create_user
from api.services.tickets import process_findings
from api.services.workdays import CalendarDay, set_calendar_days
from bkcommon.timeutil import utcnow
from tests.console.conftest import PASSWORD, Console, console_errors, shot, viewport
from tests.console.test_console_browser import attr, find, text
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

ITEMS = [
    ("A1", "冷藏设施温度正常", "Cold storage in range", 1, "temp_high"),
    ("A2", "从业人员佩戴口罩", "Staff wear masks", 2, "no_mask"),
]
TEMPLATE = {
    "name": "学校食堂日常检查表",
    "kind": "routine",
    "items": [
        {"code": c, "text_zh": zh, "text_en": en, "tier": tier, "rule": rule}
        for c, zh, en, tier, rule in ITEMS
    ],
}


def add_policy_and_people(c: Console, reg: httpx.Client) -> None:
    """East-1's liability policy (by ``reg``, a signed-in regulator), its insurer's account,
    an administrator and east-1's director: the roles the page tests sign in as."""
    today = date.today()
    policy = {
        "site_id": "east-1",
        "insurer": "平安财险",
        "policy_no": "PA-2026-001",
        "cover_cny": "500000",
        "premium_cny": "1200",
        "starts_on": str(today - timedelta(days=30)),
        "ends_on": str(today + timedelta(days=335)),
    }
    r = reg.post("/api/v1/policies", json=policy)
    assert r.status_code == 201, r.text
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        create_user(
            conn, username="insurer-pa", role=Role.INSURER, password=PASSWORD, insurer="平安财险"
        )
        create_user(conn, username="admin-1", role=Role.ADMIN, password=PASSWORD)
        create_user(
            conn, username="director-e1", role=Role.DIRECTOR, password=PASSWORD,
            person_id="officer-1",
        )  # fmt: skip


@pytest.fixture(scope="module")
def world(module_console: Console) -> Console:
    """A checklist template, an insurer of east-1 with a policy, and the pages' server."""
    c = module_console
    with httpx.Client(base_url=c.url, timeout=10) as reg:
        r = reg.post("/api/v1/auth/login", json={"username": "reg-east", "password": PASSWORD})
        assert r.status_code == 200
        assert reg.post("/api/v1/checklist-templates", json=TEMPLATE).status_code == 201
        add_policy_and_people(c, reg)
    return c


def sign_in_as(b: WebDriver, c: Console, username: str, path: str) -> None:
    """Sign out whoever is in, then sign in as ``username`` on ``path``."""
    b.delete_all_cookies()
    b.get(c.url + path)
    find(b, "#username").send_keys(username)
    find(b, "#password").send_keys(PASSWORD)
    find(b, "#login-submit").click()
    wait_until(lambda: b.find_elements(By.ID, "logout"), timeout=20, what="signed in")


def nav(b: WebDriver) -> list[str]:
    """The header's navigation targets."""
    return [
        str(a.get_attribute("href")).split("/console", 1)[1]
        for a in b.find_elements(By.CSS_SELECTOR, "header nav a")
    ]


def test_regulator_records_an_inspection_and_prints_the_notice(
    world: Console, module_browser: WebDriver
) -> None:
    c, b = world, module_browser
    sign_in_as(b, c, "reg-east", "/console/inspections")
    assert nav(b) == [
        *("/", "/tickets"),
        *("/reviews", "/complaints", "/inspections", "/visits", "/coverage", "/wall", "/kitchen"),
        *("/rapid-tests", "/deliveries", "/insurance"),
        *("/publication", "/settings"),
    ]
    find(b, "#plan-draw").click()
    drawn = find(b, "#plan-sites li")
    assert drawn.get_attribute("data-site-id") in {"east-1", "east-2", "east-3"}
    find(b, "#insp-new").click()
    find(b, "#insp-form")
    b.find_element(By.CSS_SELECTOR, "#insp-site option[value='east-2']").click()
    b.find_element(By.CSS_SELECTOR, "input[name='r-A2'][value='fail']").click()
    find(b, "#note-A2").send_keys("两名帮厨未戴口罩")
    shot(b, "inspection-record.png")
    find(b, "#insp-submit").click()
    find(b, "#insp-items tr[data-result='fail']")
    with psycopg.connect(c.db_url, autocommit=True) as conn:  # the ticket engine's turn
        process_findings(conn, now=utcnow(), settings=c.settings)
    find(b, "#insp-items tr[data-result='fail'] a", timeout=3)  # live: no reload
    assert "/console/inspections/" in b.current_url
    with psycopg.connect(c.db_url) as conn:
        row = conn.execute(
            "SELECT rule, site_id, source FROM tickets WHERE source = 'inspection'"
        ).fetchone()
    assert row == ("no_mask", "east-2", "inspection")
    find(b, "#insp-sign").click()
    wait_until(lambda: "reg-east 于" in (text(b, "dl.facts") or ""), what="notice signed")
    assert not b.find_elements(By.ID, "insp-sign")
    notice = find(b, "#insp-print").get_attribute("href") or ""
    with httpx.Client(base_url=c.url, timeout=10) as reg:
        reg.post("/api/v1/auth/login", json={"username": "reg-east", "password": PASSWORD})
        page = reg.get(notice.replace(c.url, ""))
    assert page.status_code == 200
    assert "整改通知书" in page.text
    assert "两名帮厨未戴口罩" in page.text
    assert console_errors(b) == []


def test_review_queue_works_from_the_keyboard(world: Console, module_browser: WebDriver) -> None:
    c, b = world, module_browser
    sign_in_as(b, c, "reg-east", "/console/reviews")
    first = find(b, "#reviews li.selected")
    first_id = first.get_attribute("data-review-id")
    assert "未戴厨师帽" in first.text  # words, never the code
    assert "cam-e1" not in (text(b, "main") or "")
    assert find(b, "#stats-camera")
    shot(b, "reviews.png")
    b.find_element(By.TAG_NAME, "body").send_keys("c")  # confirm the selected capture
    wait_until(lambda: not b.find_elements(By.ID, f"confirm-{first_id}"), what="confirmed")
    second = find(b, "#reviews li.selected")
    second_id = second.get_attribute("data-review-id")
    b.find_element(By.TAG_NAME, "body").send_keys("r")
    b.switch_to.active_element.send_keys("反光误报", Keys.ENTER)
    wait_until(lambda: not b.find_elements(By.ID, f"dismiss-{second_id}"), what="dismissed")
    with psycopg.connect(c.db_url) as conn:
        rows = conn.execute(
            "SELECT id::text, status, reason FROM capture_reviews ORDER BY id"
        ).fetchall()
    assert (first_id, "confirmed", None) in rows
    assert (second_id, "dismissed", "反光误报") in rows
    assert console_errors(b) == []


def test_officer_is_offered_only_what_it_may_do(world: Console, module_browser: WebDriver) -> None:
    c, b = world, module_browser
    sign_in_as(b, c, "officer-e1", "/console/inspections/new")
    refusal = find(b, "#refusal")
    assert refusal.text == "您的角色不能执行这个操作。"
    assert not b.find_elements(By.ID, "insp-form")
    b.get(c.url + "/console/inspections")
    find(b, "#inspections-table")
    assert not b.find_elements(By.ID, "plan-form")
    assert not b.find_elements(By.ID, "insp-new")
    b.get(c.url + "/console/settings")
    find(b, "#users-note")
    sections = [
        s.get_attribute("data-site-id")
        for s in b.find_elements(By.CSS_SELECTOR, "section[data-site-id]")
    ]
    assert sections == ["east-1"]
    assert "冷藏柜 1" in (text(b, "main") or "")
    assert not b.find_elements(By.ID, "deadlines")
    assert console_errors(b) == []


def test_insurer_reads_its_insured_canteens_only(
    world: Console, module_browser: WebDriver, module_downloads: Path
) -> None:
    c, b = world, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:  # two past scores of east-1
        conn.execute(
            "INSERT INTO risk_scores (site_id, computed_at, score, components) "
            "SELECT 'east-1', now() - d * interval '1 day', 20 + d, '{}' "
            "FROM unnest('{30,60}'::int[]) d"
        )
    sign_in_as(b, c, "insurer-pa", "/console/insurance")
    row = find(b, "#risk-records tr[data-site-id]")
    assert row.get_attribute("data-site-id") == "east-1"
    assert len(b.find_elements(By.CSS_SELECTOR, "#risk-records tr[data-site-id]")) == 1
    assert "PA-2026-001" in (text(b, "#policies") or "")
    assert "/reviews" not in nav(b)
    shot(b, "insurance.png")
    viewport(b, 375, 812, mobile=True)  # the insurer on a phone: each policy reads as a card
    try:
        b.get(c.url + "/console/insurance")
        policy = find(b, "#policies tr[data-policy-no='PA-2026-001']")
        cells = policy.find_elements(By.CSS_SELECTOR, "td")
        labels = [td.get_attribute("data-label") for td in cells]
        assert labels == ["保险机构", "保单号", "保额", "保费", "保险期间"]
        assert policy.find_element(By.CSS_SELECTOR, "th").text == "东区第一小学食堂"
        record = find(b, "#risk-records tr[data-site-id='east-1'] td")
        assert record.get_attribute("data-label") == "风险分"
        # what an insurer prices on: the score's trend and the losses, opened on demand
        find(b, "#risk-records tr[data-site-id='east-1'] details.risk-more summary").click()
        chart = "#risk-records tr[data-site-id='east-1'] .risk-more-body svg.chart"
        wait_until(lambda: attr(b, chart, "aria-label") == "东区第一小学食堂风险分走势")
        assert b.find_elements(By.CSS_SELECTOR, f"{chart} polyline")  # two stored points
        losses = text(b, "#risk-records tr[data-site-id='east-1'] .losses") or ""
        find(b, "#risk-xlsx").click()  # the records as a sheet, saved from the phone
        wait_until(
            lambda: (
                (text(b, "#risk-xlsx + .download-status") or "") == "已下载 risk-records.xlsx。"
            ),
            timeout=20,
            what="the sheet saved",
        )
        sheet = load_workbook(module_downloads / "risk-records.xlsx", read_only=True).worksheets[0]
        assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == ["东区第一小学食堂"]
        assert losses == "无事故记录。" or losses.startswith("事故 "), losses
        assert (
            b.execute_script(
                "const e = document.scrollingElement; return e.scrollWidth - e.clientWidth;"
            )
            <= 0
        )
        assert b.execute_script(  # and no table scrolls sideways inside its card either
            "return [...document.querySelectorAll('.table-wrap')]"
            ".every((w) => w.scrollWidth <= w.clientWidth + 1)"
        )
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    b.get(c.url + "/console/settings")
    find(b, "section[data-site-id='east-1']")
    shot(b, "settings.png")
    assert console_errors(b) == []


def _xlsx_in(folder: Path) -> Path:
    found: list[Path] = []

    def ready() -> bool:
        found[:] = [p for p in folder.iterdir() if p.suffix == ".xlsx"]
        return bool(found) and not list(folder.glob("*.crdownload"))

    wait_until(ready, timeout=15, what="XLSX download")
    return found[0]


def test_xlsx_ledger_downloads_with_words_and_local_times(
    world: Console, module_browser: WebDriver, module_downloads: Path
) -> None:
    c, b = world, module_browser
    sign_in_as(b, c, "reg-east", "/console/tickets")
    find(b, "#tickets-table tr[data-ticket-id]")
    for old in module_downloads.iterdir():
        old.unlink()
    find(b, "#export-xlsx").click()
    sheet = load_workbook(_xlsx_in(module_downloads), read_only=True).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][:7] == ["整改单编号", "食堂", "问题", "类别", "级别", "来源", "状态"]
    zone = ZoneInfo("Asia/Shanghai")
    with psycopg.connect(c.db_url) as conn:
        db = {
            no: (site, status, opened.astimezone(zone).replace(tzinfo=None))
            for no, site, status, opened in conn.execute(
                """SELECT t.ticket_no, s.name, t.status, t.opened_at FROM tickets t
                   JOIN sites s ON s.id = t.site_id WHERE s.region_id = 'd-east'"""
            ).fetchall()
        }
    words = {"open": "待处理", "acknowledged": "已接收", "rectified": "已整改", "closed": "已关闭"}
    got = {r[0]: (r[1], r[6], r[7]) for r in rows[1:]}
    assert set(got) == set(db)  # every ticket of the district, none of the other
    for no, (site, status, opened) in db.items():
        assert got[no][0] == site
        assert got[no][1] == words[status]
        assert abs((got[no][2] - opened).total_seconds()) < 1  # local wall-clock time
    assert all("temp_high" not in str(cell) for r in rows for cell in r)
    # titles in the reader's language only, the same words on the page and in the sheet
    page_titles = b.execute_script(
        "return Object.fromEntries([...document.querySelectorAll("
        "'#tickets-table tr[data-ticket-id]')].map((r) => "
        "[r.querySelector('th').textContent, r.querySelectorAll('td')[1].textContent]))"
    )
    assert page_titles
    assert {r[0]: r[2] for r in rows[1:] if r[0] in page_titles} == page_titles
    assert not any("temperature" in x or "mask" in x for x in page_titles.values())
    assert any(x.startswith("冷藏温度超标: ") for x in page_titles.values())
    # printing the ledger leaves the console's header and buttons off the paper
    b.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not find(b, "header.top").is_displayed()
        assert not find(b, "#export-xlsx").is_displayed()
        assert find(b, "#tickets-table").is_displayed()
    finally:
        b.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    tid = c.world.tickets["east-1:temp_high"]
    b.get(f"{c.url}/console/tickets/{tid}/notice")
    sheet_text = find(b, "#notice").text
    assert "整改通知书" in sheet_text
    assert "冷藏" in sheet_text
    shot(b, "notice.png")
    assert console_errors(b) == []


def test_site_charts_cameras_ticket_curve_and_one_risk_number(
    world: Console, module_browser: WebDriver
) -> None:
    c, b = world, module_browser
    tid = c.world.tickets["east-1:temp_high"]
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        found = conn.execute("SELECT opened_at FROM tickets WHERE id = %s", (tid,)).fetchone()
        assert found is not None
        opened = found[0]
        with conn.cursor() as cur:  # the fridge warming up around the alarm, every 10 minutes
            cur.executemany(
                """INSERT INTO sensor_readings (sensor_id, ts, temp_c)
                   VALUES ('fridge-e1', %s, %s) ON CONFLICT DO NOTHING""",
                [
                    (opened + timedelta(minutes=10 * i), 5.0 + max(0, 12 - abs(i)) * 0.6)
                    for i in range(-60, 60)
                ],
            )
        has_store = conn.execute("SELECT to_regclass('readings_5m_store')").fetchone()
        if has_store and has_store[0]:  # plain PostgreSQL: the rollups ingest maintains
            for table, seconds in (("readings_5m_store", 300), ("readings_1h_store", 3600)):
                conn.execute(
                    f"""DELETE FROM {table} WHERE sensor_id = 'fridge-e1';
                        INSERT INTO {table} (sensor_id, bucket, temp_min, temp_max, temp_sum, n)
                        SELECT sensor_id,
                               to_timestamp(floor(extract(epoch FROM ts) / {seconds}) * {seconds}),
                               min(temp_c), max(temp_c), sum(temp_c), count(*)
                        FROM sensor_readings WHERE sensor_id = 'fridge-e1' GROUP BY 1, 2"""
                )
        conn.execute(  # lunch was followed by a disinfection cycle, dinner was not
            """INSERT INTO disinfection_checks (sensor_id, site_id, service_date, meal, meal_start,
                                                meal_end, window_end, outcome, checked_at)
               VALUES ('freezer-e1', 'east-1', current_date, 'lunch', now(), now(), now(),
                       'done', now()),
                      ('freezer-e1', 'east-1', current_date, 'dinner', now(), now(), now(),
                       'missed', now())"""
        )
        conn.execute(
            """INSERT INTO alarms (alarm_key, site_id, sensor_id, rule, tier, status, started_at,
                                   raised_at, cleared_at, peak_temp_c)
               VALUES ('fridge-e1:temp_high:curve', 'east-1', 'fridge-e1', 'temp_high', 1,
                       'cleared', %s, %s, %s, 12.2)""",
            (opened - timedelta(minutes=30), opened, opened + timedelta(hours=1)),
        )
        conn.execute(  # the camera's box went silent: the camera is offline, by name
            """INSERT INTO alarms (alarm_key, site_id, camera_id, rule, tier, status, started_at,
                                   raised_at, details)
               VALUES ('cam-e1:camera_offline:x', 'east-1', 'cam-e1', 'camera_offline', 2,
                       'active', now() - interval '10 minutes', now(),
                       '{"reason": "box_silent"}')"""
        )
    sign_in_as(b, c, "reg-east", "/console/")
    find(b, "tr[data-site-id='east-1'] td:last-child")
    overview_risk = text(b, "tr[data-site-id='east-1'] td:last-child")
    assert overview_risk
    b.get(c.url + "/console/sites/east-1")
    find(b, "li[data-sensor-id='fridge-e1'] .uchart canvas")
    assert text(b, "#risk-now") == overview_risk  # the same number on both pages
    outcomes = [
        r.text for r in b.find_elements(By.CSS_SELECTOR, "#site-disinfection tbody td:last-child")
    ]
    assert sorted(outcomes) == ["已消毒", "未消毒"]  # words, not done / missed
    assert "site_id=east-1" in (attr(b, "#dis-ledger", "href") or "")
    camera = find(b, "li[data-camera-id='cam-e1']")
    assert "凉菜专间" in camera.text
    assert camera.get_attribute("data-state") == "offline"  # its camera_offline alarm
    offline = [li.text for li in b.find_elements(By.CSS_SELECTOR, "#site-alarms li")]
    assert any("视频离线" in x and "凉菜专间" in x for x in offline), offline
    # hover shows the value under the cursor in the legend
    canvas = find(b, "li[data-sensor-id='fridge-e1'] .u-over")
    ActionChains(b).move_to_element(canvas).perform()
    wait_until(
        lambda: "°C" in (text(b, "li[data-sensor-id='fridge-e1'] .u-legend") or ""),
        what="hover value",
    )
    day = int(attr(b, "li[data-sensor-id='fridge-e1'] .uchart", "data-points") or 0)
    find(b, "li[data-sensor-id='fridge-e1'] button[data-range='7d']").click()
    wait_until(
        lambda: (
            attr(b, "li[data-sensor-id='fridge-e1'] button[data-range='7d']", "aria-pressed")
            == "true"
        ),
        what="7-day range",
    )
    wait_until(
        lambda: (
            0 < int(attr(b, "li[data-sensor-id='fridge-e1'] .uchart", "data-points") or 0) < day
        ),
        what="hourly points over 7 days",
    )
    shot(b, "site.png")
    b.get(f"{c.url}/console/tickets/{tid}")
    curve = find(b, "#ticket-curve .uchart")
    assert int(curve.get_attribute("data-points") or 0) >= 100
    assert int(curve.get_attribute("data-alarms") or 0) == 1
    b.execute_script("document.getElementById('ticket-curve').scrollIntoView()")
    shot(b, "ticket-curve.png")
    assert console_errors(b) == []


def test_overview_shows_one_region_at_a_time_with_its_own_totals(
    world: Console, module_browser: WebDriver
) -> None:
    c, b = world, module_browser
    sign_in_as(b, c, "admin-1", "/console/")
    find(b, "#sites-table tr.site-row")

    def shown() -> set[str]:
        return {
            str(r.get_attribute("data-site-id"))
            for r in b.find_elements(By.CSS_SELECTOR, "#sites-table tr.site-row")
        }

    assert shown() == {"east-1", "east-2", "east-3", "west-1"}
    assert text(b, "#stat-sites") == "4"
    options = [o.text for o in b.find_elements(By.CSS_SELECTOR, "#region-filter option")]
    assert options == ["全部区域", "东区 (3)", "西区 (1)"]  # names, not ids, with their counts
    Select(find(b, "#region-filter")).select_by_value("d-west")
    wait_until(lambda: shown() == {"west-1"}, what="only the west district")
    assert text(b, "#stat-sites") == "1"
    with psycopg.connect(c.db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM tickets WHERE site_id = 'west-1' AND status <> 'closed'"
        ).fetchone()
    assert row is not None
    assert text(b, "#stat-open") == str(row[0])  # the tiles count the region chosen
    Select(find(b, "#region-filter")).select_by_value("")
    wait_until(lambda: len(shown()) == 4, what="every district again")
    assert console_errors(b) == []


def _next(weekday: int) -> date:
    """The next such day (0 Monday … 6 Sunday) after today, within the calendar's year."""
    today = date.today()
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def test_admin_manages_and_director_reads_in_their_words(
    world: Console, module_browser: WebDriver
) -> None:
    c, b = world, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO deadline_rules (region_id, rule, tier, hours) "
            "VALUES ('d-west', 'daily_check_missed', NULL, 0.5)"
        )
        conn.execute(
            "INSERT INTO deadline_rules (region_id, rule, tier, working_days) "
            "VALUES ('d-east', NULL, 3, 10)"
        )
        set_calendar_days(conn, [CalendarDay(day=_next(5), working=True, note="调休上班")])
    sign_in_as(b, c, "admin-1", "/console/settings")
    users = find(b, "#users-table")
    rule = text(b, "#deadline-rules li[data-region='d-west']") or ""
    assert rule == "日管控未按时完成 · 西区: 30 分钟", rule  # the region by name, in minutes
    rule = text(b, "#deadline-rules li[data-region='d-east']") or ""
    assert rule == "3 级 · 日常监督 · 东区: 10 个工作日", rule
    assert text(b, "#calendar-days") == f"{_next(5).isoformat()} 上班 · 调休上班"
    find(b, "section[data-site-id='west-1']")
    assert "监管人员" in users.text  # roles in words
    assert "保险机构" in users.text
    assert find(b, "#deadlines").is_displayed()
    sections = {
        s.get_attribute("data-site-id")
        for s in b.find_elements(By.CSS_SELECTOR, "section[data-site-id]")
    }
    assert sections == {"east-1", "east-2", "east-3", "west-1"}  # an admin sees every canteen
    assert console_errors(b) == []
    sign_in_as(b, c, "director-e1", "/console/")
    find(b, "#sites-table tr.site-row")
    rows = [
        r.get_attribute("data-site-id")
        for r in b.find_elements(By.CSS_SELECTOR, "#sites-table tr.site-row")
    ]
    assert rows == ["east-1"]
    assert text(b, "#user-role") == "食品安全总监"
    assert console_errors(b) == []
