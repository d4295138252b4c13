"""Rapid tests (快检) and purchase records over HTTP, on real PostgreSQL.

A failed sample opens a ticket on the buying site through the ticket engine and flags the
supplier's other recent deliveries region-wide; a CSV export imports its valid rows and
names each bad one; statistics count batches per month; each role sees and writes only
its own sites.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.app import create_app
from api.console.ledger_export import tickets_xlsx
from api.schemas import TicketPublic
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.timeutil import utcnow
from tests.api.authz_world import World
from tests.api.conftest import rapid_test_body
from tests.support.images import small_png

TODAY = utcnow().date()


@pytest.fixture
def app_settings(settings: ApiSettings, tmp_path: Path) -> ApiSettings:
    return settings.model_copy(update={"evidence_dir": tmp_path / "evidence"})


@pytest.fixture
def client(db_url: str, app_settings: ApiSettings) -> Iterator[TestClient]:
    app = create_app(app_settings, common=CommonSettings(database_url=db_url))
    with TestClient(app) as c:
        yield c


def _purchase(c: TestClient, w: World, role: str, site: str, **extra: Any) -> dict[str, Any]:
    body = {
        "site_id": site,
        "supplier_name": "绿源蔬菜配送",
        "supplier_licence": "JY13301000000001",
        "product": "青菜",
        "batch_no": "B-0301",
        "delivered_on": str(TODAY - timedelta(days=2)),
        "quantity": "25.5",
        "received_by": f"receiver at {site}",
    } | extra
    r = c.post("/api/v1/purchases", json=body, headers=w.headers(role))
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_failed_sample_opens_a_ticket_and_flags_the_suppliers_recent_deliveries(
    client: TestClient, world: World, conn: psycopg.Connection[Any], app_settings: ApiSettings
) -> None:
    c, w = client, world
    bought = _purchase(c, w, "officer", "site-a1")
    other_a2 = _purchase(c, w, "admin", "site-a2", batch_no="B-0302")
    other_b1 = _purchase(c, w, "admin", "site-b1", batch_no="B-0303")
    _purchase(c, w, "admin", "site-a3", delivered_on=str(TODAY - timedelta(days=30)))  # too old
    _purchase(c, w, "admin", "site-a2", supplier_licence="JY-OTHER", supplier_name="别家")

    r = c.post(
        "/api/v1/rapid-tests",
        json=rapid_test_body("site-a1", purchase_id=bought["id"], supplier_licence=None),
        headers=w.headers("officer"),
    )
    assert r.status_code == 201, r.text
    test = r.json()
    assert test["supplier_licence"] == "JY13301000000001"  # from the purchase record
    assert test["batch_no"] == "B-0301"
    assert test["flagged"] == 2  # a2 (same district) and b1 (the next district), not a3

    assert process_findings(conn, now=utcnow(), settings=app_settings) >= 1
    tested = c.get(f"/api/v1/rapid-tests/{test['id']}", headers=w.headers("officer")).json()
    ticket_id = tested["ticket_id"]
    ticket = c.get(f"/api/v1/tickets/{ticket_id}", headers=w.headers("officer")).json()
    assert tested["ticket_no"] == ticket["ticket_no"]  # the number people quote, not the id
    assert ticket["site_id"] == "site-a1"
    assert ticket["rule"] == "rapid_test_failed"
    assert ticket["source"] == "rapid_test"  # its own kind, not "opened by hand"
    assert ticket["tier"] == 1
    assert ticket["title"].startswith("快检不合格 rapid test failed: 青菜 B-0301")
    # the rectification ledger names its source in words, in either language
    for lang, word in (("zh-CN", "食材快检"), ("en", "rapid test")):
        book = tickets_xlsx([TicketPublic.model_validate(ticket)], {"site-a1": "一小"}, lang=lang)
        sheet = load_workbook(io.BytesIO(book)).worksheets[0]
        row = [c.value for c in sheet[2]]
        assert word in row, row

    flags = c.get("/api/v1/rapid-tests/flags", headers=w.headers("regulator")).json()
    assert [(f["site_id"], f["purchase_id"]) for f in flags] == [("site-a2", other_a2["id"])]
    assert flags[0]["failed_site_id"] == "site-a1"  # in the regulator's region too
    admin_flags = c.get("/api/v1/rapid-tests/flags", headers=w.headers("admin")).json()
    assert {f["purchase_id"] for f in admin_flags} == {other_a2["id"], other_b1["id"]}
    assert c.get("/api/v1/rapid-tests/flags", headers=w.headers("officer")).json() == []
    # each flagged delivery's canteen got its own ticket to check and hold the stock
    flagged_tickets = conn.execute(
        """SELECT site_id, subject, tier, title, source FROM tickets
           WHERE rule = 'supplier_flagged' ORDER BY site_id"""
    ).fetchall()
    assert [(r[0], r[1], r[2], r[4]) for r in flagged_tickets] == [
        ("site-a2", "青菜 B-0302", 2, "rapid_test"),
        ("site-b1", "青菜 B-0303", 2, "rapid_test"),
    ]
    assert flagged_tickets[0][3].startswith("同供应商快检不合格 same supplier failed")

    # the same sample again: nothing new (200 with the stored test), no second finding
    again = c.post(
        "/api/v1/rapid-tests",
        json=rapid_test_body("site-a1", purchase_id=bought["id"]),
        headers=w.headers("officer"),
    )
    assert again.status_code == 200
    assert again.json()["id"] == test["id"]
    n = conn.execute(
        "SELECT kind, count(*) FROM findings "
        "WHERE rule IN ('rapid_test_failed', 'supplier_flagged') GROUP BY kind"
    ).fetchall()
    assert n == [("rapid_test", 3)]  # the failure and its two flags, once
    # a passing sample opens nothing
    ok = c.post(
        "/api/v1/rapid-tests",
        json=rapid_test_body("site-a1", sample_no="S-002", result="pass", value=12.0),
        headers=w.headers("officer"),
    )
    assert ok.status_code == 201
    assert ok.json()["ticket_id"] is None
    assert ok.json()["flagged"] == 0


def test_each_role_sees_and_writes_only_its_sites(client: TestClient, world: World) -> None:
    c, w = client, world
    for site in ("site-a1", "site-a2", "site-b1"):
        r = c.post(
            "/api/v1/rapid-tests",
            json=rapid_test_body(site, result="pass", supplier_licence=None),
            headers=w.headers("admin"),
        )
        assert r.status_code == 201, r.text
    # an officer writes for their site only: another site does not exist for them
    r = c.post("/api/v1/rapid-tests", json=rapid_test_body("site-a2"), headers=w.headers("officer"))
    assert r.status_code == 404
    assert "site_id" in r.json()["detail"]
    body = rapid_test_body("site-a1", sample_no="X")
    assert c.post("/api/v1/rapid-tests", json=body, headers=w.headers("insurer")).status_code == 403
    assert c.post("/api/v1/rapid-tests", json=body, headers=w.headers("device")).status_code == 403
    assert c.get("/api/v1/rapid-tests", headers=w.headers("device")).status_code == 403
    seen = {
        role: {t["site_id"] for t in c.get("/api/v1/rapid-tests", headers=w.headers(role)).json()}
        for role in ("admin", "regulator", "officer", "director", "insurer")
    }
    assert seen == {  # the world has a test at every site too
        "admin": {"site-a1", "site-a2", "site-a3", "site-b1"},
        "regulator": {"site-a1", "site-a2", "site-a3"},
        "officer": {"site-a1"},
        "director": {"site-a1"},
        "insurer": {"site-a2"},  # reads its insured canteen
    }
    p = _purchase(c, w, "admin", "site-b1")
    assert c.get(f"/api/v1/purchases/{p['id']}", headers=w.headers("officer")).status_code == 404
    refused = c.post(
        "/api/v1/purchases",
        json={
            "site_id": "site-b1",
            "supplier_name": "x",
            "supplier_licence": "L",
            "product": "p",
            "batch_no": "b",
            "delivered_on": str(TODAY),
            "quantity": 1,
            "received_by": "r",
        },
        headers=w.headers("officer"),
    )
    assert refused.status_code == 404
    # a purchase of another site cannot be named as a sample's origin
    r = c.post(
        "/api/v1/rapid-tests",
        json=rapid_test_body("site-a1", sample_no="Y", purchase_id=p["id"]),
        headers=w.headers("admin"),
    )
    assert r.status_code == 404
    assert "purchase_id" in r.json()["detail"]


def test_bad_input_is_refused_naming_the_field(client: TestClient, world: World) -> None:
    c, h = client, world.headers("admin")
    cases = {
        "item": rapid_test_body("site-a1", item="magic"),
        "tested_at": rapid_test_body("site-a1", tested_at="2026-03-01T08:00:00"),
        "result": rapid_test_body("site-a1", result="maybe"),
        "value": rapid_test_body("site-a1", value="NaN"),
    }
    for name, body in cases.items():
        r = c.post("/api/v1/rapid-tests", json=body, headers=h)
        assert r.status_code == 422, (name, r.text)
        assert f"body.{name}" in r.json()["detail"], (name, r.text)
    r = c.post(
        "/api/v1/rapid-tests",
        json=rapid_test_body("site-a1", supplier_licence="NOT-KNOWN"),
        headers=h,
    )
    assert r.status_code == 422
    assert r.json()["detail"].startswith("supplier_licence:")
    r = c.post(
        "/api/v1/purchases",
        json={
            "site_id": "site-a1",
            "supplier_name": "x",
            "supplier_licence": "L",
            "product": "p",
            "batch_no": "b",
            "delivered_on": "2026-02-30",
            "quantity": 0,
            "received_by": "r",
        },
        headers=h,
    )
    assert r.status_code == 422
    assert "body.delivered_on" in r.json()["detail"]
    assert "body.quantity" in r.json()["detail"]
    p = _purchase(c, world, "admin", "site-a1")
    dup = {k: p[k] for k in ("site_id", "supplier_name", "supplier_licence", "product",
                             "batch_no", "delivered_on", "unit", "received_by")}  # fmt: skip
    r = c.post("/api/v1/purchases", json=dup | {"quantity": 3}, headers=h)
    assert r.status_code == 409


CSV_HEADER = (
    "样品编号,单位编号,样品名称,供应商,许可证号,批次,检测项目,检测方法,检测结果,"
    "检测值,限值,单位,检测员,检测时间\n"
)


def test_csv_import_stores_valid_rows_and_names_each_bad_one(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    c, h = client, world.headers("regulator")
    when = (utcnow() - timedelta(hours=1)).astimezone().strftime("%Y-%m-%d %H:%M")
    rows = [
        f"C-1,site-a1,白菜,绿源,JY-1,B1,农药残留(酶抑制法),酶抑制率法,合格,10.5,50,%,T,{when}",
        f"C-2,site-a2,猪肉,肉联厂,JY-2,B2,瘦肉精,胶体金,阳性,,,,T,{when}",
        f"C-3,site-a1,白菜,绿源,JY-1,B1,农药残留(酶抑制法),酶抑制率法,也许,,,,T,{when}",
        f"C-4,site-b1,白菜,绿源,JY-1,B1,甲醛,比色法,合格,,,,T,{when}",  # outside the region
        f"C-5,site-a1,白菜,绿源,JY-1,B1,不存在的项目,比色法,合格,,,,T,{when}",
        "C-6,site-a1,白菜,绿源,JY-1,B1,甲醛,比色法,合格,,,,T,yesterday",
        f"C-7,site-a1,白菜,绿源,JY-1,B1,甲醛,比色法,合格,abc,,,T,{when}",
        "",
    ]
    raw = (CSV_HEADER + "\n".join(rows)).encode("gb18030")
    r = c.post(
        "/api/v1/rapid-tests/import",
        content=raw,
        headers=h | {"Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["imported"] == 2
    assert report["failed"] == 5
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (3, "result"),
        (4, "site_id"),
        (5, "item"),
        (6, "tested_at"),
        (7, "value"),
    ]
    stored = conn.execute(
        "SELECT sample_no, result, source FROM rapid_tests WHERE source = 'csv' ORDER BY sample_no"
    ).fetchall()
    assert stored == [("C-1", "pass", "csv"), ("C-2", "fail", "csv")]
    flagged = conn.execute("SELECT count(*) FROM findings WHERE rule = 'rapid_test_failed'")
    assert flagged.fetchone() == (1,)  # the failed row became a finding
    again = c.post(
        "/api/v1/rapid-tests/import", content=raw, headers=h | {"Content-Type": "text/csv"}
    ).json()
    assert again["imported"] == 0
    assert again["duplicates"] == 2
    missing = c.post(
        "/api/v1/rapid-tests/import",
        content=b"sample_no,product\nA,B\n",
        headers=h | {"Content-Type": "text/csv"},
    )
    assert missing.status_code == 422
    assert missing.json()["detail"].startswith("header: missing column(s) site_id")
    big = c.post(
        "/api/v1/rapid-tests/import",
        content=b"x" * (2 * 1024 * 1024 + 1),
        headers=h | {"Content-Type": "text/csv"},
    )
    assert big.status_code == 413
    ro = c.post("/api/v1/rapid-tests/import", content=raw, headers=world.headers("insurer"))
    assert ro.status_code == 403


def test_monthly_statistics_count_batches_pass_rate_and_failures(
    client: TestClient, world: World
) -> None:
    c, h = client, world.headers("admin")
    samples = [
        ("M1", "site-a1", "2026-01-10T02:00:00Z", "pesticide_enzyme", "pass", "JY-1"),
        ("M1", "site-a1", "2026-01-10T02:00:00Z", "formaldehyde", "fail", "JY-1"),  # same batch
        ("M2", "site-a2", "2026-01-20T02:00:00Z", "clenbuterol", "fail", "JY-2"),
        ("M3", "site-a2", "2026-01-31T17:00:00Z", "clenbuterol", "pass", "JY-2"),  # Feb in CST
        ("M4", "site-b1", "2026-02-03T02:00:00Z", "pesticide_enzyme", "fail", "JY-1"),
    ]
    for no, site, at, item, result, lic in samples:
        r = c.post(
            "/api/v1/rapid-tests",
            json=rapid_test_body(
                site,
                sample_no=no,
                tested_at=at,
                item=item,
                result=result,
                supplier_licence=lic,
                supplier_name=f"supplier {lic}",
            ),
            headers=h,
        )
        assert r.status_code == 201, r.text
    stats = c.get("/api/v1/rapid-tests/stats?from=2026-01&to=2026-02", headers=h).json()
    jan, feb = stats
    assert (jan["month"], jan["batches"], jan["passed"], jan["failed"]) == ("2026-01", 2, 0, 2)
    assert jan["pass_rate"] == 0.0
    assert {f["key"]: f["failed"] for f in jan["failures_by_item"]} == {
        "formaldehyde": 1,
        "clenbuterol": 1,
    }
    assert {f["key"]: f["failed"] for f in jan["failures_by_supplier"]} == {"JY-1": 1, "JY-2": 1}
    assert (feb["month"], feb["batches"], feb["passed"], feb["pass_rate"]) == ("2026-02", 2, 1, 0.5)
    regional = c.get(
        "/api/v1/rapid-tests/stats?from=2026-02&to=2026-02", headers=world.headers("regulator")
    ).json()
    assert [(m["month"], m["batches"]) for m in regional] == [("2026-02", 1)]  # b1 not theirs
    bad = c.get("/api/v1/rapid-tests/stats?from=2026-13", headers=h)
    assert bad.status_code == 422
    assert "query.from" in bad.json()["detail"]
    backwards = c.get("/api/v1/rapid-tests/stats?from=2026-03&to=2026-01", headers=h)
    assert backwards.status_code == 422


def test_photo_of_the_strip_goes_through_the_evidence_checks(
    client: TestClient, world: World
) -> None:
    c = client
    test = c.post(
        "/api/v1/rapid-tests", json=rapid_test_body("site-a1"), headers=world.headers("officer")
    ).json()
    url = f"/api/v1/rapid-tests/{test['id']}/photo"
    officer = world.headers("officer")
    png = small_png()
    r = c.put(url, content=png, headers=officer | {"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    got = c.get(url, headers=world.headers("regulator"))
    assert got.status_code == 200
    assert got.content == png
    assert got.headers["content-type"] == "image/png"
    assert c.get(url, headers=world.headers("insurer")).status_code == 404  # not its canteen
    text = c.put(url, content=b"hello", headers=officer | {"Content-Type": "text/plain"})
    assert text.status_code == 415
    fake = c.put(url, content=b"\x89PNG\r\n\x1a\nrubbish", headers=officer)
    assert fake.status_code == 415


def test_csv_import_of_files_instruments_and_people_really_write(
    client: TestClient, world: World, conn: psycopg.Connection[Any]
) -> None:
    """Tabs or semicolons, a BOM before GB 18030, a decimal comma that splits a row, one
    sample twice with two results, a stored pass "corrected" to a fail, an unclosed quote:
    each is read or refused by name; none is a 500 or a silent loss."""
    c, h = client, world.headers("regulator") | {"Content-Type": "text/csv"}
    when = (utcnow() - timedelta(hours=1)).astimezone().strftime("%Y-%m-%d %H:%M")
    row = f"T-1,site-a1,白菜,绿源,JY-1,B1,甲醛,比色法,合格,,,,T,{when}"
    tabbed = (CSV_HEADER + row).replace(",", "\t").encode("gb18030")
    r = c.post("/api/v1/rapid-tests/import", content=tabbed, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["imported"] == 1
    semi = codecs.BOM_UTF8 + (CSV_HEADER + row.replace("T-1", "T-2")).replace(",", ";").encode(
        "gb18030"
    )
    assert c.post("/api/v1/rapid-tests/import", content=semi, headers=h).json()["imported"] == 1
    rows = [
        row.replace("合格", "不合格"),  # T-1 stored as a pass: a "correction" is not applied
        f"T-3,site-a1,白菜,绿源,JY-1,B1,农药残留(酶抑制法),酶抑制率法,合格,62,5,50,%,T,{when}",
        f"T-4,site-a1,白菜,绿源,JY-1,B1,甲醛,比色法,合格,,,,T,{when}",
        f"T-4,site-a1,白菜,绿源,JY-1,B1,甲醛,比色法,不合格,,,,T,{when}",  # twice in one file
    ]
    report = c.post(
        "/api/v1/rapid-tests/import", content=(CSV_HEADER + "\n".join(rows)).encode(), headers=h
    ).json()
    assert [(e["row"], e["field"]) for e in report["errors"]] == [
        (1, "result"),
        (2, "row"),
        (4, "sample_no"),
    ]
    assert "recorded before as pass" in report["errors"][0]["reason"]
    assert "decimal comma" in report["errors"][1]["reason"]
    assert "repeats row 3" in report["errors"][2]["reason"]
    stored = conn.execute("SELECT result FROM rapid_tests WHERE sample_no = 'T-4'").fetchall()
    assert stored == [("pass",)]
    quote = (CSV_HEADER + '"' + "x" * 140_000).encode()
    bad = c.post("/api/v1/rapid-tests/import", content=quote, headers=h)
    assert bad.status_code == 422
    assert "unclosed quote" in bad.json()["detail"]
