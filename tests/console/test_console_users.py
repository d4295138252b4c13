"""A regulator manages the users of its region in the console, and only those.

The east regulator creates an officer for a canteen of its district, makes it a director of
two canteens, resets its password (the officer signs in with the new one), disables and
enables it; a user of the west district is not listed and cannot be edited, and a grant the
page does not offer (a tampered region) is refused in the reader's language.
"""

from __future__ import annotations

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.auth.scope import Role
from api.auth.users import create_user
from tests.console.conftest import PASSWORD, Console, console_errors, shot, viewport
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import sign_in_as
from tests.console.test_console_phone import PHONE, sideways
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

FETCH = """
const done = arguments[arguments.length - 1];
fetch(arguments[0], {method: arguments[1], credentials: "same-origin",
  headers: {"Content-Type": "application/json"}, body: arguments[2]})
  .then((r) => done(r.status));
"""
REFUSED = ("status of 403", "status of 404")  # the refusals this test provokes on purpose


def usernames(b: WebDriver) -> set[str]:
    return {
        str(r.get_attribute("data-username"))
        for r in b.find_elements(By.CSS_SELECTOR, "#users-table tr[data-username]")
    }


def message(b: WebDriver, want: str) -> None:
    wait_until(lambda: text(b, "#user-message") == want, what=f"message {want!r}")


def grants(c: Console, username: str) -> tuple[str, list[str], bool]:
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        row = conn.execute(
            """SELECT u.role, COALESCE(array_agg(us.site_id ORDER BY us.site_id)
                                       FILTER (WHERE us.site_id IS NOT NULL), '{}'), u.active
               FROM users u LEFT JOIN user_sites us ON us.user_id = u.id
               WHERE u.username = %s GROUP BY u.id""",
            (username,),
        ).fetchone()
    assert row is not None, username
    return row[0], list(row[1]), row[2]


def test_regulator_creates_an_officer_in_its_region_and_cannot_touch_another(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        create_user(
            conn, username="officer-w1", role=Role.OFFICER, password=PASSWORD, site_ids=("west-1",)
        )
        create_user(conn, username="admin-u", role=Role.ADMIN, password=PASSWORD)
    sign_in_as(b, c, "reg-east", "/console/settings")
    find(b, "#users-table")
    # not the west officer, not the admin; the region's inspector (执法检查人员) with its role
    assert usernames(b) == {"reg-east", "insp-east", "officer-e1"}
    assert "执法检查人员" in (text(b, "#users-table tr[data-username='insp-east']") or "")
    own = find(b, "#users-table tr[data-username='reg-east']")
    assert not own.find_elements(By.CSS_SELECTOR, "button")  # no action on its own account
    roles = [o.get_attribute("value") for o in b.find_elements(By.CSS_SELECTOR, "#new-role option")]
    assert roles == ["regulator", "inspector", "officer", "director"]  # never admin or insurer
    offered = {
        i.get_attribute("value")
        for i in b.find_elements(By.CSS_SELECTOR, "#new-sites input[type=checkbox]")
    }
    assert offered == {"east-1", "east-2", "east-3"}
    assert "西区" not in (text(b, "#user-new") or "")

    # a new officer of east-2
    find(b, "#new-username").send_keys("officer-e2")
    find(b, "#new-password").send_keys("first password 1")
    find(b, "#new-sites input[value='east-2']").click()
    find(b, "#new-submit").click()
    message(b, "已创建：officer-e2")
    wait_until(lambda: "officer-e2" in usernames(b), what="listed")
    assert grants(c, "officer-e2") == ("officer", ["east-2"], True)
    row = find(b, "#users-table tr[data-username='officer-e2']")
    assert "东区第二中学食堂" in row.text  # names and words, no codes
    assert "食品安全员" in row.text

    # made director of two canteens, then its password reset
    row.find_element(By.CSS_SELECTOR, "button[data-action='edit']").click()
    find(b, "#edit-role option[value='director']").click()
    find(b, "#edit-sites input[value='east-3']").click()
    find(b, "#edit-save").click()
    message(b, "已保存：officer-e2")
    assert grants(c, "officer-e2") == ("director", ["east-2", "east-3"], True)
    find(b, "#users-table tr[data-username='officer-e2'] button[data-action='edit']").click()
    find(b, "#edit-password").send_keys(PASSWORD)
    find(b, "#edit-reset").click()
    message(b, "已重置 officer-e2 的密码，原有登录已全部失效。")

    # disabled and enabled again
    b.execute_script("window.confirm = () => true")
    find(b, "#users-table tr[data-username='officer-e2'] button[data-action='disable']").click()
    message(b, "已停用：officer-e2（登录已失效）")
    assert grants(c, "officer-e2")[2] is False
    find(b, "#users-table tr[data-username='officer-e2'] button[data-action='enable']").click()
    message(b, "已启用：officer-e2")
    assert grants(c, "officer-e2")[2] is True

    # a grant the page does not offer (a region changed in the page) is refused in words
    find(b, "#new-role option[value='regulator']").click()
    b.execute_script(
        "const s = document.getElementById('new-region');"
        "s.append(new Option('西区', 'd-west')); s.value = 'd-west';"
    )
    find(b, "#new-username").send_keys("reg-west-2")
    find(b, "#new-password").send_keys("long enough 123")
    find(b, "#new-submit").click()
    message(b, "只能设置本辖区或下级区域的监管人员或执法检查人员。")
    # the west officer cannot be edited, reset or disabled through the API either
    for method, path, body in (
        ("PATCH", "/api/v1/users/officer-w1", '{"site_ids": ["east-1"]}'),
        ("POST", "/api/v1/users/officer-w1/password", '{"password": "taken over now"}'),
        ("POST", "/api/v1/users/officer-w1/disable", None),
    ):
        assert b.execute_async_script(FETCH, path, method, body) == 404
    assert grants(c, "officer-w1") == ("officer", ["west-1"], True)
    assert [e for e in console_errors(b) if not any(x in e for x in REFUSED)] == []

    # at 375 px the users table becomes cards, with nothing running off the screen
    viewport(b, *PHONE, mobile=True)
    b.refresh()
    find(b, "#users-table tr[data-username='officer-e2']")
    assert sideways(b) <= 0
    b.execute_script("document.getElementById('users').scrollIntoView()")
    shot(b, "phone-users.png")
    b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    # the officer signs in with the password the regulator set
    sign_in_as(b, c, "officer-e2", "/console/settings")
    find(b, "#users-note")
    assert text(b, "#user-role") == "食品安全总监"
    assert [e for e in console_errors(b) if not any(x in e for x in REFUSED)] == []
