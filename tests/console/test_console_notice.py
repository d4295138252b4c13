"""The printed rectification notice of a ticket: the problem, the evidence written out from
what the ticket was opened with, the deadline, the people responsible for the canteen and what
to do, in the reader's language, on paper and on a phone."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import psycopg
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from api.auth.scope import Role
from api.auth.users import create_user
from api.services.labels import (
    DEFAULT_ADVICE,
    INSPECTION_ADVICE,
    RULE_ADVICE,
    RULE_LABELS,
    advice_for,
)
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.timeutil import utcnow
from tests.console.conftest import PASSWORD, Console, console_errors, viewport
from tests.console.test_console_browser import text
from tests.console.test_console_pages import sign_in_as
from tests.support.services import wait_until

pytestmark = pytest.mark.slow


def _open(c: Console, key: str, rule: str, kind: str, subject: str, payload: dict) -> int:
    """A finding through the real ticket engine; the id of the ticket it opened."""
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                     payload)
               VALUES (%s, %s, 'east-1', %s, %s, 2, now(), %s)""",
            (key, kind, subject, rule, json.dumps(payload)),
        )
        process_findings(conn, now=utcnow(), settings=ApiSettings())
        row = conn.execute(
            "SELECT t.id FROM tickets t JOIN ticket_events e ON e.ticket_id = t.id "
            "WHERE e.data ->> 'finding_key' = %s",
            (key,),
        ).fetchone()
    assert row is not None, key
    return int(row[0])


def test_notice_context_is_scoped_and_kept_from_insurers(module_console: Console) -> None:
    c = module_console
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        create_user(
            conn, username="ins-notice", role=Role.INSURER, password=PASSWORD, insurer="平安"
        )
    east, west = c.world.tickets["east-1:temp_high"], c.world.tickets["west-1:temp_high"]
    with httpx.Client(base_url=c.url, timeout=10) as anon:
        assert anon.get(f"/console/api/tickets/{east}/notice").status_code == 401
    for user, expect in (("reg-east", 200), ("insp-east", 200), ("ins-notice", 403)):
        with httpx.Client(base_url=c.url, timeout=10) as client:
            login = {"username": user, "password": PASSWORD}
            assert client.post("/api/v1/auth/login", json=login).status_code == 200
            r = client.get(f"/console/api/tickets/{east}/notice")
            assert r.status_code == expect, (user, r.text)
            if user == "reg-east":
                assert r.json() == {
                    "ticket_id": east,
                    "site_id": "east-1",
                    "site_name": "东区第一小学食堂",
                    "site_address": "东区一路 1 号",
                    "region_name": "东区",
                    "responsible": [{"name": "王食安", "role": "officer"}],
                }
                assert client.get(f"/console/api/tickets/{west}/notice").status_code == 404
                assert client.get("/console/api/tickets/0/notice").status_code == 422
                assert client.get(f"/console/api/tickets/{2**63}/notice").status_code == 422
                assert client.get("/console/api/tickets/999999/notice").status_code == 404


def test_notice_writes_out_the_evidence_and_who_answers_for_it(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    at = utcnow() - timedelta(minutes=30)
    capture = _open(
        c,
        "notice-capture",
        "smoking",
        "violation",
        "cam-e1",
        {
            "camera_id": "cam-e1",
            "started_at": at.isoformat(),
            "confidence": 0.874,
            "evidence_sha256": c.world.evidence_sha,  # a real image in the evidence store
        },
    )
    rapid = _open(
        c,
        "notice-rapid",
        "rapid_test_failed",
        "manual",
        "rapid-1",
        {
            "product": "青菜",
            "batch_no": "B-7",
            "sample_no": "S-1",
            "item_zh": "农药残留(酶抑制法)",
            "item_en": "pesticide residue (enzyme inhibition)",
            "value": 62.5,
            "unit": "%",
            "limit": 50.0,
            "method": "GB/T 5009.199",
        },
    )
    sign_in_as(b, c, "reg-east", f"/console/tickets/{capture}/notice")
    wait_until(lambda: "凉菜专间" in (text(b, "#notice-evidence") or ""), what="the capture line")
    evidence = text(b, "#notice-evidence") or ""
    assert "AI 抓拍（置信度 87%）" in evidence
    assert "整改单 ZG-" in evidence  # where the rest of the evidence is
    wait_until(
        lambda: b.execute_script(
            "const i = document.querySelector('.notice-photo'); return i && i.naturalWidth > 0"
        ),
        what="the capture photo loaded",
    )
    assert text(b, "#notice-responsible") == "食品安全员 王食安"
    assert "禁止吸烟" in (text(b, "#notice-requirement") or "")
    sheet = text(b, "#notice") or ""
    assert "东区一路 1 号" in sheet
    assert "cam-e1" not in sheet
    assert "smoking" not in sheet

    dark = _open(  # the box went silent: ingest's camera sweep opened this one
        c,
        "notice-dark",
        "camera_offline",
        "alarm_raised",
        "cam-e1",
        {"camera_id": "cam-e1", "reason": "box_silent", "started_at": at.isoformat()},
    )
    b.get(f"{c.url}/console/tickets/{dark}/notice")
    wait_until(lambda: "失联" in (text(b, "#notice-evidence") or ""), what="the silent box line")
    assert "凉菜专间：所在边缘盒" in (text(b, "#notice-evidence") or "")

    b.get(f"{c.url}/console/tickets/{rapid}")  # the ticket page says what to do as well
    wait_until(lambda: "封存" in (text(b, "#ticket-advice") or ""), what="the advice")
    b.get(f"{c.url}/console/tickets/{rapid}/notice")
    wait_until(lambda: "青菜" in (text(b, "#notice-evidence") or ""), what="the test result")
    evidence = text(b, "#notice-evidence") or ""
    assert "农药残留(酶抑制法)：62.5 %，限值 50 %" in evidence
    assert "封存" in (text(b, "#notice-requirement") or "")
    assert "已处理" not in (text(b, "#notice") or "")  # no kitchen-display button on paper

    # English, on a phone: the title's wide spacing is for Chinese; nothing runs off the page
    b.execute_script("localStorage.setItem('bk.lang', 'en')")
    viewport(b, 390, 844, mobile=True)
    try:
        b.get(f"{c.url}/console/tickets/{rapid}/notice")
        wait_until(lambda: "Stop using" in (text(b, "#notice-requirement") or ""), what="English")
        assert "limit 50 %" in (text(b, "#notice-evidence") or "")
        assert text(b, "#notice-responsible") == "food-safety officer 王食安"
        assert b.execute_script("return document.documentElement.scrollWidth") <= 390
        assert "：" not in (text(b, ".notice-sign") or "")
    finally:
        b.execute_script("localStorage.setItem('bk.lang', 'zh-CN')")
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert console_errors(b) == []


def test_every_rule_has_advice_in_both_languages() -> None:
    """The notice, the ticket page, the alert and the kitchen board say what to do for every
    rule the server knows, in both languages, and no two rules share one sentence by mistake."""
    assert set(RULE_ADVICE) == set(RULE_LABELS)
    for rule, (zh, en) in RULE_ADVICE.items():
        assert zh.strip(), rule
        assert en.strip(), rule
        assert not any(c.isascii() and c.isalpha() for c in zh), rule
    assert len({zh for zh, _ in RULE_ADVICE.values()}) == len(RULE_ADVICE)
    assert advice_for("inspection_b3") == INSPECTION_ADVICE
    assert advice_for("manual") == DEFAULT_ADVICE
