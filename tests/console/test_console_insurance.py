"""The insurance workflow in the console: the regulator registers a canteen's liability policy,
the canteen's officer records an incident and files the claim, the regulator records the
insurer's decisions up to the payment, and the insurer reads it all without a form."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from api.auth.scope import Role, SiteScope
from api.auth.users import create_user
from api.services.insurance import IncidentCreate, create_incident
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.timeutil import utcnow
from tests.console.conftest import PASSWORD, Console, console_errors, viewport
from tests.console.test_console_browser import attr, find, text
from tests.console.test_console_pages import sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def _claim_step(b: WebDriver, to: str, *, amount: str = "", note: str = "") -> None:
    """Open the first incident's claim step, choose ``to`` and record it."""
    row = find(b, "#incidents tr[data-incident-id]")
    row.find_element(By.CSS_SELECTOR, "details.claim-step summary").click()
    assert row.find_element(By.CSS_SELECTOR, "input[name=amount_cny]").get_attribute("value") == ""
    Select(row.find_element(By.CSS_SELECTOR, "select[name=claim_status]")).select_by_value(to)
    if amount:
        row.find_element(By.CSS_SELECTOR, "input[name=amount_cny]").send_keys(amount)
    if note:
        row.find_element(By.CSS_SELECTOR, "input[name=note]").send_keys(note)
    row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(
        lambda: attr(b, "#incidents tr[data-incident-id] td.claim", "data-claim") == to,
        what=f"the claim {to}",
    )


def _register_policy(b: WebDriver, *, cover: str, premium: str) -> None:
    """Fill and send the policy form for east-1's policy PICC-E1-2026."""
    find(b, "#policy-box summary").click()
    Select(find(b, "#pf-site")).select_by_value("east-1")
    find(b, "#pf-insurer").send_keys("人保财险")
    find(b, "#pf-no").send_keys("PICC-E1-2026")
    find(b, "#pf-cover").send_keys(cover)
    find(b, "#pf-premium").send_keys(premium)
    find(b, "#policy-save").click()


def test_policy_incident_and_claim_through_the_console(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        create_user(
            conn, username="ins-claims", role=Role.INSURER, password=PASSWORD, insurer="人保财险"
        )

    sign_in_as(b, c, "reg-east", "/console/insurance")
    _register_policy(b, cover="2000000", premium="3600")
    wait_until(lambda: "PICC-E1-2026 已登记" in (text(b, "#policy-status") or ""), what="saved")
    wait_until(
        lambda: "¥2,000,000" in (text(b, "#policies tr[data-policy-no='PICC-E1-2026']") or ""),
        what="the policy listed",
    )
    _register_policy(b, cover="1000000", premium="3000")  # the same number: refused in words
    wait_until(lambda: "已存在" in (text(b, "#policy-status") or ""), what="the refusal")
    assert all("409" in e for e in console_errors(b))  # the refusal, and nothing else
    with psycopg.connect(c.db_url) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM policies WHERE policy_no = 'PICC-E1-2026'"
        ).fetchone() or (0,)
    assert n == 1

    # a ticket names the policy in force when it opened (none before the policy began)
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                     payload)
               VALUES ('ins-pest', 'violation', 'east-1', 'cam-e1', 'pest', 1, now(), '{}')"""
        )
        process_findings(conn, now=utcnow(), settings=ApiSettings())
        (fresh,) = conn.execute("SELECT id FROM tickets WHERE rule = 'pest'").fetchone() or (0,)
    b.get(f"{c.url}/console/tickets/{fresh}")
    wait_until(lambda: "PICC-E1-2026" in (text(b, "#ticket-policy") or ""), what="the policy")
    assert "人保财险" in (text(b, "#ticket-policy") or "")
    b.get(f"{c.url}/console/tickets/{c.world.tickets['east-1:temp_high']}")  # 3 days old
    wait_until(lambda: text(b, "#ticket-policy") == "开单时未投保", what="uninsured then")

    # the canteen's officer, on a phone, records what happened and files the claim
    viewport(b, 390, 844, mobile=True)
    try:
        sign_in_as(b, c, "officer-e1", "/console/insurance")
        assert not b.find_elements(By.ID, "policy-box")  # policies are the authority's
        find(b, "#incident-box summary").click()
        Select(find(b, "#if-kind")).select_by_value("foodborne_illness")
        find(b, "#if-desc").send_keys("两名学生午餐后腹痛")
        find(b, "#incident-save").click()
        wait_until(lambda: "事故已记录" in (text(b, "#incident-status") or ""), what="recorded")
        wait_until(lambda: b.find_elements(By.CSS_SELECTOR, "#incidents tr[data-incident-id]"))
        row = text(b, "#incidents tr[data-incident-id]") or ""
        assert "疑似食源性疾病" in row
        assert "foodborne_illness" not in row
        _claim_step(b, "filed", amount="8000", note="报案号 R-7")
        assert "王食安 于" in (text(b, "#incidents td.claim") or "")  # the person, not the login
        assert b.execute_script("return document.documentElement.scrollWidth") <= 390
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    # the regulator records the insurer's decisions; a paid claim is settled
    sign_in_as(b, c, "reg-east", "/console/insurance")
    _claim_step(b, "accepted", amount="6500")
    _claim_step(b, "paid")
    assert "已赔付，理赔结束" in (text(b, "#incidents td.claim") or "")
    assert "¥6,500" in (text(b, "#incidents tr[data-incident-id]") or "")
    with psycopg.connect(c.db_url) as conn:
        steps = conn.execute(
            "SELECT actor, from_status, to_status, amount_cny::text, note "
            "FROM incident_claim_events ORDER BY id"
        ).fetchall()
        (occurred,) = conn.execute("SELECT occurred_at FROM incidents").fetchone() or (None,)
    assert steps == [
        ("officer-e1", "none", "filed", "8000.00", "报案号 R-7"),
        ("reg-east", "filed", "accepted", "6500.00", ""),
        ("reg-east", "accepted", "paid", "6500.00", ""),
    ]
    assert occurred is not None  # the local time typed, stored as the instant it names

    row = find(b, "#incidents tr[data-incident-id]")
    row.find_element(By.CSS_SELECTOR, "details.claim-history-box summary").click()
    wait_until(lambda: len(row.find_elements(By.CSS_SELECTOR, ".claim-history li")) == 3)
    history = text(b, "#incidents .claim-history") or ""
    assert "王食安: 未理赔 → 已报案 · ¥8,000 · 报案号 R-7" in history
    assert "officer-e1" not in history
    assert "reg-east: 已受理 → 已赔付 · ¥6,500" in history

    # the insurer of no canteen here reads, and is offered no form
    sign_in_as(b, c, "ins-claims", "/console/insurance")
    find(b, "#incidents")
    assert not b.find_elements(By.CSS_SELECTOR, "#incident-box, #policy-box, .claim-step")
    assert console_errors(b) == []


def test_wrong_input_is_said_in_words_on_a_phone(
    module_console: Console, module_browser: WebDriver
) -> None:
    """A policy ending before it starts, an incident still to come, a rejection without the
    reason and a payment without the amount: each said in words beside the form, nothing sent
    (never the API's English with its field names); every opener is big enough for a finger."""
    c, b = module_console, module_browser
    viewport(b, 390, 844, mobile=True)
    try:
        sign_in_as(b, c, "reg-east", "/console/insurance")
        find(b, "#policy-box summary").click()
        Select(find(b, "#pf-site")).select_by_value("east-2")
        find(b, "#pf-insurer").send_keys("太平洋财险")
        find(b, "#pf-no").send_keys("CPIC-E2-2026")
        find(b, "#pf-cover").send_keys("1000000")
        find(b, "#pf-premium").send_keys("2000")
        b.execute_script("document.getElementById('pf-end').value = '2020-01-01';")
        find(b, "#policy-save").click()
        wait_until(
            lambda: text(b, "#policy-status") == "终止日期不能早于起保日期。", what="policy refused"
        )

        find(b, "#incident-box summary").click()
        Select(find(b, "#if-site")).select_by_value("east-2")
        b.execute_script("document.getElementById('if-at').value = '2099-06-01T12:00';")
        find(b, "#if-desc").send_keys("午餐后一名学生呕吐")
        find(b, "#incident-save").click()
        wait_until(
            lambda: text(b, "#incident-status") == "发生时间不能晚于现在。", what="incident refused"
        )
        with psycopg.connect(c.db_url) as conn:
            assert (
                conn.execute(
                    "SELECT 1 FROM policies WHERE policy_no = 'CPIC-E2-2026' "
                    "UNION ALL SELECT 1 FROM incidents WHERE site_id = 'east-2'"
                ).fetchall()
                == []
            )
        b.execute_script("document.getElementById('if-at').value = '2024-03-05T12:00';")
        find(b, "#incident-save").click()
        wait_until(lambda: "事故已记录" in (text(b, "#incident-status") or ""), what="recorded")
        with psycopg.connect(c.db_url) as conn:
            (iid,) = conn.execute(
                "SELECT id FROM incidents WHERE site_id = 'east-2'"
            ).fetchone() or (0,)
        mine = f"#incidents tr[data-incident-id='{iid}']"

        def step(to: str, note: str = "") -> None:
            row = find(b, mine)
            if not row.find_element(By.CSS_SELECTOR, "details.claim-step").get_attribute("open"):
                row.find_element(By.CSS_SELECTOR, "details.claim-step summary").click()
            Select(row.find_element(By.CSS_SELECTOR, "select[name=claim_status]")).select_by_value(
                to
            )
            if note:
                row.find_element(By.CSS_SELECTOR, "input[name=note]").send_keys(note)
            row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        status = f"{mine} p[role=status]"
        step("filed")
        wait_until(lambda: attr(b, f"{mine} td.claim", "data-claim") == "filed")
        step("rejected")  # no reason
        wait_until(
            lambda: text(b, status) == "拒赔请在“说明”中写明保险机构的理由。", what="no reason"
        )
        step("accepted")
        wait_until(lambda: attr(b, f"{mine} td.claim", "data-claim") == "accepted")
        step("paid")  # no amount agreed, none typed
        wait_until(lambda: text(b, status) == "已赔付请填写赔付金额。", what="no amount")
        assert find(b, f"{mine} td.claim").get_attribute("data-claim") == "accepted"
        # a finger's worth of height for each opener and the bundle link
        heights = b.execute_script(
            "return [...document.querySelectorAll('main summary, main a.bundle-link')]"
            ".map((e) => e.getBoundingClientRect().height)"
        )
        assert heights
        assert min(heights) >= 36, heights
        assert b.execute_script("return document.documentElement.scrollWidth") <= 390
        assert all("422" not in e for e in console_errors(b))  # nothing refused: nothing sent
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_the_claim_bundle_is_saved_from_the_page_and_a_failure_said_beside_it(
    module_console: Console, module_browser: WebDriver, module_downloads: Path
) -> None:
    """The bundle link is fetched by the page: the file lands under the API's name with the
    page saying so; an incident gone meanwhile is said in words beside its link, not only as
    "Failed" in the browser's download bar."""
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        made = create_incident(
            conn=conn,
            data=IncidentCreate(site_id="east-1", occurred_at=utcnow(), kind="complaint"),
            scope=SiteScope.everything(),
            actor="reg-east",
        )
    sign_in_as(b, c, "reg-east", "/console/insurance")
    link = f"#incidents tr[data-incident-id='{made.id}'] a.bundle-link"
    before = set(module_downloads.iterdir())
    find(b, link)
    b.execute_script(  # a double tap, and the live table redrawn while the file is prepared
        "const a = document.querySelector(arguments[0]); a.click(); a.click();"
        "const tr = a.closest('tr'); tr.replaceWith(tr.cloneNode(true));",
        link,
    )
    said = f"#incidents tr[data-incident-id='{made.id}'] .download-status"
    name = f"incident-{made.id}.zip"
    wait_until(lambda: text(b, said) == f"已下载 {name}。", timeout=20, what="saved")
    wait_until(lambda: module_downloads / name in set(module_downloads.iterdir()) - before)
    wait_until(lambda: not list(module_downloads.glob("*.crdownload")), what="complete")
    time.sleep(0.5)  # a second file, had the double tap fetched twice, would be there by now
    assert [p.name for p in set(module_downloads.iterdir()) - before] == [name]
    assert attr(b, link, "aria-busy") is None
    with zipfile.ZipFile(module_downloads / name) as zf:
        assert json.loads(zf.read("manifest.json"))["incident"]["id"] == made.id

    b.execute_script(  # as if the incident were gone since the page was drawn
        "document.querySelector(arguments[0]).setAttribute('href', arguments[1])",
        link,
        "/api/v1/incidents/999999999/bundle.zip",
    )
    find(b, link).click()
    wait_until(lambda: text(b, said) == "未找到，或不在您的管辖范围内。", what="the refusal")
    assert "error" in (attr(b, said, "class") or "")
    assert all("404" in e for e in console_errors(b))  # the refusal, and nothing else


def test_the_risk_records_of_many_canteens_come_a_page_at_a_time(
    module_console: Console, module_browser: WebDriver
) -> None:
    """A region with more insured canteens than a page: 50 rows, the page and the count said,
    the next page in the address; the highest stored score first; the policies paged too."""
    c, b = module_console, module_browser
    extra = [f"bulk-{i:02d}" for i in range(55)]
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        for i, site in enumerate(extra):
            conn.execute(
                "INSERT INTO sites (id, region_id, name) VALUES (%s, 'd-east', %s)",
                (site, f"批量食堂 {i:02d}"),
            )
            conn.execute(
                "INSERT INTO policies (site_id, insurer, policy_no, cover_cny, premium_cny,"
                " starts_on, ends_on) VALUES (%s, '人保财险', %s, 1000000, 2000,"
                " current_date - 10, current_date + 300)",
                (site, f"BULK-{i:02d}"),
            )
        conn.execute(  # the riskiest by its stored score
            "INSERT INTO risk_scores (site_id, computed_at, score, components)"
            " VALUES ('bulk-54', now(), 99, '{}')"
        )
        (total,) = conn.execute(
            "SELECT count(DISTINCT p.site_id) FROM policies p JOIN sites s ON s.id = p.site_id"
            " WHERE s.region_id = 'd-east'"
        ).fetchone() or (0,)
    try:
        sign_in_as(b, c, "reg-east", "/console/insurance")
        rows = "#risk-records tr[data-site-id]"
        wait_until(lambda: len(b.find_elements(By.CSS_SELECTOR, rows)) == 50, what="a page")
        assert attr(b, rows, "data-site-id") == "bulk-54"  # the highest stored score first
        assert f"第 1 / 2 页（共 {total} 家）" in (text(b, "#risk-pager") or "")
        find(b, "#risk-next").click()
        wait_until(lambda: "page=2" in b.current_url, what="page 2 in the address")
        wait_until(lambda: len(b.find_elements(By.CSS_SELECTOR, rows)) == total - 50)
        assert f"第 2 / 2 页（共 {total} 家）" in (text(b, "#risk-pager") or "")
        # the policies too: 50 a page, the next page in the address beside the risk page's
        policies = "#policies tr[data-policy-no]"
        assert len(b.find_elements(By.CSS_SELECTOR, policies)) == 50
        assert (text(b, "#policies-pager") or "").startswith("第 1 页")
        find(b, "#policies-next").click()
        wait_until(lambda: b.current_url.endswith("/console/insurance?page=2&policies_page=2"))
        with psycopg.connect(c.db_url) as conn:
            (n_policies,) = conn.execute(
                "SELECT count(*) FROM policies p JOIN sites s ON s.id = p.site_id"
                " WHERE s.region_id = 'd-east'"
            ).fetchone() or (0,)
        wait_until(lambda: len(b.find_elements(By.CSS_SELECTOR, policies)) == n_policies - 50)
        assert console_errors(b) == []
    finally:
        with psycopg.connect(c.db_url, autocommit=True) as conn:
            conn.execute("DELETE FROM risk_scores WHERE site_id LIKE 'bulk-%'")
            conn.execute("DELETE FROM policies WHERE site_id LIKE 'bulk-%'")
            conn.execute("DELETE FROM sites WHERE id LIKE 'bulk-%'")
