"""The console's complaint queue (百姓点检), driven in Chromium against the real API and PostgreSQL.

Two complaints arrive through the public canteen page's form (the real multipart route); the
east regulator sees both with their photo, dismissing without a reply is refused as a
sentence naming the field, one is confirmed (a ticket opens, the database shows it) and one
dismissed with a reply; the tracking page shows the outcome. An officer has no queue.
"""

from __future__ import annotations

import httpx
import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import PASSWORD, Console, console_errors, png_bytes, shot
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import nav, sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

PUBLISH = dict.fromkeys(
    (
        "enabled",
        "show_inspection",
        "show_rectification",
        "show_cold_chain",
        "show_rapid_tests",
        "accept_complaints",
    ),
    True,
)


def _complain(c: Console, body: str) -> str:
    """File a complaint through the public form; its tracking code."""
    with httpx.Client(base_url=c.url, timeout=10) as public:
        r = public.post(
            "/public/canteens/east-1/complaints",
            data={"body": body, "contact": "138-0000-0000"},
            files=[("photos", ("soup.png", png_bytes(), "image/png"))],
        )
    assert r.status_code == 303, r.text
    return str(r.headers["location"]).rsplit("/", 1)[1]


def test_regulator_confirms_and_dismisses_complaints(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with httpx.Client(base_url=c.url, timeout=10) as reg:
        r = reg.post("/api/v1/auth/login", json={"username": "reg-east", "password": PASSWORD})
        assert r.status_code == 200
        assert reg.put("/api/v1/publication/d-east", json=PUBLISH).status_code == 200
    hair = _complain(c, "汤里有头发")
    _complain(c, "饭菜太咸")

    sign_in_as(b, c, "officer-e1", "/console/")
    assert "/complaints" not in nav(b)

    sign_in_as(b, c, "reg-east", "/console/complaints")
    find(b, "#cp-queue")
    wait_until(lambda: len(b.find_elements(By.CSS_SELECTOR, "#cp-queue li[data-complaint]")) == 2)
    items = b.find_elements(By.CSS_SELECTOR, "#cp-queue li[data-complaint]")
    first, second = (i.get_attribute("data-complaint") for i in items)
    assert "汤里有头发" in items[0].text
    assert "东区第一小学食堂" in items[0].text
    assert "138-0000-0000" in items[0].text
    wait_until(
        lambda: b.execute_script(
            "const i = document.querySelector('#cp-queue img'); return i && i.naturalWidth > 0"
        ),
        what="the complaint's photo shown",
    )
    shot(b, "complaints.png")

    find(b, f"#cp-dismiss-{second}").click()  # no reply: refused, in Chinese, naming it
    wait_until(lambda: "reply" in (text(b, f"#cp-status-{second}") or ""), what="refusal")
    assert "填写的内容有误" in (text(b, f"#cp-status-{second}") or "")
    refusals = console_errors(b)  # the browser logs the 422 itself: that one and no other
    assert len(refusals) == 1
    assert "422" in refusals[0]

    find(b, f"#cp-reply-{first}").send_keys("已责令食堂整改")
    find(b, f"#cp-confirm-{first}").click()
    wait_until(lambda: b.find_elements(By.CSS_SELECTOR, f"#cp-done tr[data-complaint='{first}']"))
    find(b, f"#cp-reply-{second}").send_keys("经核实，菜品咸度符合标准")
    find(b, f"#cp-dismiss-{second}").click()
    wait_until(lambda: b.find_elements(By.CSS_SELECTOR, f"#cp-done tr[data-complaint='{second}']"))
    assert find(b, "#cp-queue-empty")
    done = find(b, f"#cp-done tr[data-complaint='{first}']")
    assert "已立案" in done.text
    assert done.find_elements(By.CSS_SELECTOR, "a[href^='/console/tickets/']")
    assert "不予立案" in find(b, f"#cp-done tr[data-complaint='{second}']").text
    with psycopg.connect(c.db_url) as conn:
        row = conn.execute(
            "SELECT status, ticket_id FROM complaints WHERE tracking_code = %s", (hair,)
        ).fetchone()
    assert row is not None
    assert row[0] == "confirmed"
    assert row[1] is not None
    with httpx.Client(base_url=c.url, timeout=10) as public:
        page = public.get(f"/public/complaints/{hair}").text
    assert "已责令食堂整改" in page
    # the ticket says where it came from: a public complaint, not "opened by hand"
    find(b, f"#cp-done tr[data-complaint='{first}'] a[href^='/console/tickets/']").click()
    source = (
        "const dt = [...document.querySelectorAll('dt')]"
        "  .find((e) => e.innerText.trim() === '来源');"
        "return dt ? dt.nextElementSibling.innerText.trim() : null;"
    )
    wait_until(lambda: b.execute_script(source) == "群众投诉", what="the ticket's source in words")
    assert console_errors(b) == []
