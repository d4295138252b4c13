"""A district with no checklist yet: the regulator starts from the standard one in a click,
records an inspection with it, and the failed item's ticket reads in words."""

from __future__ import annotations

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.services.standard_checklist import STANDARD_TEMPLATE
from api.services.tickets import process_findings
from bkcommon.timeutil import utcnow
from tests.console.conftest import Console, console_errors
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def test_regulator_starts_from_the_standard_checklist(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    sign_in_as(b, c, "insp-east", "/console/inspections/new")
    assert "请管理员或监管人员先创建" in (text(b, "#no-templates") or "")
    assert not b.find_elements(By.ID, "use-standard")  # an inspector may not write one

    sign_in_as(b, c, "reg-east", "/console/inspections/new")
    find(b, "#use-standard").click()
    wait_until(
        lambda: len(b.find_elements(By.CSS_SELECTOR, "#insp-form fieldset.check-item")) == 15,
        what="the standard checklist's 15 items",
    )
    assert "学校食堂日常监督检查表" in (text(b, "#insp-form h2") or "")
    cold = next(i for i in STANDARD_TEMPLATE.items if i.code == "B3")
    find(b, "#insp-site option[value='east-1']").click()
    find(b, f"fieldset[data-code='{cold.code}'] input[value='fail']").click()
    find(b, f"#note-{cold.code}").send_keys("冷藏柜 11 ℃，无温度记录")
    find(b, "#insp-submit").click()
    wait_until(lambda: "/console/inspections/" in b.current_url, what="the inspection page")
    failed = find(b, "#insp-items tr[data-result='fail']")
    assert failed.find_element(By.CSS_SELECTOR, "th").text == cold.text_zh
    labels = [td.get_attribute("data-label") for td in failed.find_elements(By.CSS_SELECTOR, "td")]
    assert labels[:2] == ["结果", "说明 / 理由"]  # a phone reads each item as a card
    with psycopg.connect(c.db_url) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM checklist_templates WHERE name = %s", (STANDARD_TEMPLATE.name,)
        ).fetchone()
        assert rows == (1,)

    with psycopg.connect(c.db_url, autocommit=True) as conn:  # the ticket engine's turn
        process_findings(conn, now=utcnow(), settings=c.settings)
        tid = conn.execute(
            "SELECT id FROM tickets WHERE rule = 'inspection_b3' AND site_id = 'east-1'"
        ).fetchone()
    assert tid is not None
    b.get(f"{c.url}/console/tickets/{tid[0]}")
    find(b, "#ticket-facts")
    assert (text(b, "#ticket-title") or "") == f"监督检查不合格（B3）: {cold.text_zh}"
    facts = text(b, "#ticket-facts") or ""
    assert "inspection_b3" not in facts
    assert "inspection-item" not in facts
    assert console_errors(b) == []
