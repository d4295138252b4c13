"""The inspector's (执法检查人员) day in the console, in a real Chromium against the real API.

The inspector of d-east is offered its work only (inspections, tickets, the review queue and
the ledgers it checks), records an inspection on the tablet form with a failed item, the
ticket engine opens the ticket, the notice is signed and printed, the canteen rectifies, and
the inspector verifies the rectification, which closes the ticket.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.services.tickets import process_findings
from bkcommon.timeutil import utcnow
from tests.console.conftest import PASSWORD, Console, console_errors, png_bytes
from tests.console.test_console_browser import attr, find, text
from tests.console.test_console_pages import TEMPLATE, nav, sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

INSPECTOR_NAV = [
    *("/", "/tickets"),
    *("/reviews", "/inspections", "/wall", "/kitchen"),
    *("/rapid-tests", "/deliveries"),
]


@pytest.fixture(scope="module")
def world(module_console: Console) -> Console:
    """The regulator's checklist template (shared by every region: an inspector writes none)."""
    c = module_console
    with httpx.Client(base_url=c.url, timeout=10) as reg:
        r = reg.post("/api/v1/auth/login", json={"username": "reg-east", "password": PASSWORD})
        assert r.status_code == 200
        assert reg.post("/api/v1/checklist-templates", json=TEMPLATE).status_code == 201
    return c


def test_inspector_records_an_inspection_and_verifies_the_rectification(
    world: Console, module_browser: WebDriver, tmp_path: Path
) -> None:
    c, b = world, module_browser
    sign_in_as(b, c, "insp-east", "/console/inspections")
    assert text(b, "#user-role") == "执法检查人员"
    assert nav(b) == INSPECTOR_NAV  # no settings, users, publication, insurance, complaints

    # the checklist on the tablet form: one failed item with what was seen
    find(b, "#insp-new").click()
    find(b, "#insp-form")
    b.find_element(By.CSS_SELECTOR, "#insp-site option[value='east-1']").click()
    b.find_element(By.CSS_SELECTOR, "input[name='r-A2'][value='fail']").click()
    find(b, "#note-A2").send_keys("切配间一名帮厨未戴口罩")
    find(b, "#insp-submit").click()
    find(b, "#insp-items tr[data-result='fail']")
    with psycopg.connect(c.db_url, autocommit=True) as conn:  # the ticket engine's turn
        process_findings(conn, now=utcnow(), settings=c.settings)
    link = find(b, "#insp-items tr[data-result='fail'] a", timeout=3)  # live: no reload
    found = re.search(r"/console/tickets/(\d+)", link.get_attribute("href") or "")
    assert found, link.get_attribute("href")
    tid = int(found.group(1))
    with psycopg.connect(c.db_url) as conn:
        row = conn.execute(
            "SELECT rule, site_id, source, status FROM tickets WHERE id = %s", (tid,)
        ).fetchone()
    assert row == ("no_mask", "east-1", "inspection", "open")

    # the rectification notice: signed by the inspector, printed from its own session
    find(b, "#insp-sign").click()
    wait_until(lambda: "insp-east 于" in (text(b, "dl.facts") or ""), what="notice signed")
    notice = find(b, "#insp-print").get_attribute("href") or ""
    with httpx.Client(base_url=c.url, timeout=10) as insp:
        r = insp.post("/api/v1/auth/login", json={"username": "insp-east", "password": PASSWORD})
        assert r.status_code == 200
        page = insp.get(notice.replace(c.url, ""))
        assert page.status_code == 200
        assert "整改通知书" in page.text
        assert "切配间一名帮厨未戴口罩" in page.text
        # what is not the inspection workflow is refused, in the API too
        refused = insp.post("/api/v1/checklist-templates", json=TEMPLATE)
        assert refused.status_code == 403
        assert insp.get("/api/v1/users").status_code == 403

    # the canteen's officer rectifies with a photo
    with httpx.Client(base_url=c.url, timeout=10) as off:
        r = off.post("/api/v1/auth/login", json={"username": "officer-e1", "password": PASSWORD})
        assert r.status_code == 200
        r = off.post(
            f"/api/v1/tickets/{tid}/rectify",
            data={"note": "已培训并配发口罩"},
            files={"photos": ("masks.png", png_bytes(80, 60), "image/png")},
        )
        assert r.status_code == 200, r.text

    # the inspector checks it: verify and reject are offered, nothing the canteen does
    b.get(f"{c.url}/console/tickets/{tid}")
    wait_until(
        lambda: attr(b, "#ticket-status", "data-status") == "rectified", what="rectified shown"
    )
    buttons = {
        e.get_attribute("id") for e in b.find_elements(By.CSS_SELECTOR, "#action-buttons button")
    }
    assert buttons == {"act-verify", "act-reject"}
    find(b, "#comment-text").send_keys("复查：均已佩戴口罩")
    find(b, "#comment-send").click()
    wait_until(lambda: "复查：均已佩戴口罩" in (text(b, "main") or ""), what="comment shown")
    find(b, "#act-verify").click()
    wait_until(lambda: attr(b, "#ticket-status", "data-status") == "closed", what="verified")
    with psycopg.connect(c.db_url) as conn:
        row = conn.execute("SELECT status FROM tickets WHERE id = %s", (tid,)).fetchone()
        event = conn.execute(
            "SELECT kind, actor FROM ticket_events WHERE ticket_id = %s ORDER BY id DESC LIMIT 1",
            (tid,),
        ).fetchone()
    assert row == ("closed",)
    assert event == ("verified", "insp-east")
    assert console_errors(b) == []
