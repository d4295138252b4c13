"""The console's own routes over real HTTP: pages, headers, export scope, reads, and no internet."""

from __future__ import annotations

import csv
import fnmatch
import io
import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from api.console.routes import STATIC_DIR, csv_cell
from api.services.labels import RULE_LABELS, SOURCE_LABELS
from tests.console.conftest import PASSWORD, Console


@contextmanager
def signed_in(console: Console, username: str) -> Iterator[httpx.Client]:
    """A client holding the session cookie of ``username``."""
    with httpx.Client(base_url=console.url, timeout=10) as client:
        r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert "bk_session" in client.cookies
        yield client


def test_pages_and_assets_carry_the_csp_and_need_nothing_outside(console: Console) -> None:
    with httpx.Client(base_url=console.url, timeout=10) as client:
        for path in ("/console/", "/console/tickets/12", "/console/sites/east-1"):
            r = client.get(path)
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/html")
            assert "default-src 'self'" in r.headers["content-security-policy"]
            assert r.headers["x-content-type-options"] == "nosniff"
            assert '<script type="module" src="/console/static/app.js">' in r.text
        r = client.get("/console", follow_redirects=False)
        assert r.status_code == 308
        assert r.headers["location"] == "/console/"
        assets = [p for p in STATIC_DIR.iterdir() if p.suffix in {".html", ".js", ".css"}]
        for asset in sorted(assets):
            r = client.get(f"/console/static/{asset.name}")
            assert r.status_code == 200, asset.name
            assert "default-src 'self'" in r.headers["content-security-policy"]
            # nothing fetched from another host: no absolute URLs, no inline script or style
            body = r.text.replace("http://www.w3.org/2000/svg", "")  # a namespace, not a fetch
            assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", body), asset.name
            assert "<style" not in r.text
            assert not re.search(r"<script(?![^>]*\bsrc=)", r.text), asset.name
        assert (
            client.get("/console/static/app.js")
            .headers["content-type"]
            .startswith("text/javascript")
        )
        for bad in (
            "/console/static/..%2Froutes.py",
            "/console/static/routes.py",
            "/console/static/.x.js",
            "/console/static/__init__.py",
            "/console/static/nothing.js",
        ):
            r = client.get(bad)
            assert r.status_code == 404, bad
            assert "default-src 'self'" in r.headers["content-security-policy"]


def test_export_and_reads_need_sign_in_and_keep_to_the_users_sites(console: Console) -> None:
    with httpx.Client(base_url=console.url, timeout=10) as anon:
        for path in (
            "/console/export/tickets.csv",
            "/console/api/summary",
            "/console/api/sites/east-1/sensors",
        ):
            r = anon.get(path)
            assert r.status_code == 401, path
            assert "default-src 'self'" in r.headers["content-security-policy"]
    with signed_in(console, "reg-east") as reg:
        r = reg.get("/console/export/tickets.csv")
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"] == 'attachment; filename="tickets.csv"'
        assert r.headers["cache-control"] == "no-store"
        assert r.content.startswith(b"\xef\xbb\xbfticket_no,")  # a BOM: Excel reads UTF-8
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert sorted(x["site_id"] for x in rows) == ["east-1", "east-1", "east-2"]
        assert "west" not in r.text
        r = reg.get("/console/export/tickets.csv", params={"site_id": "west-1"})
        lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert len(lines) == 1  # the header only: west-1 is outside the district
        assert lines[0][0] == "ticket_no"
        r = reg.get("/console/export/tickets.csv", params={"tier": 1, "overdue": "true"})
        rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert [(x["site_id"], x["tier"], x["overdue"]) for x in rows] == [("east-1", "1", "true")]
        assert reg.get("/console/export/tickets.csv", params={"tier": 9}).status_code == 422

        summary = reg.get("/console/api/summary").json()
        assert summary["regions"] == {"d-east": "东区"}
        assert set(summary["risk"]) == {"east-1", "east-2", "east-3"}
        assert all(0 <= v["score"] <= 100 for v in summary["risk"].values())

        sensors = reg.get("/console/api/sites/east-1/sensors").json()
        assert [s["id"] for s in sensors] == ["freezer-e1", "fridge-e1"]
        assert sensors[1]["params"]["high_c"] == 8.0
        # the newest reading's own time, and when it arrived (the offline rule's clock)
        now = console.world.now
        assert [
            datetime.fromisoformat(sensors[1][k]) for k in ("last_reading_at", "last_received_at")
        ] == [now - timedelta(minutes=10), now - timedelta(minutes=9)]
        assert sensors[0]["last_received_at"] is None  # freezer-e1: never heard from
        assert reg.get("/console/api/sites/west-1/sensors").status_code == 404
        assert reg.get("/console/api/sites/nowhere/sensors").status_code == 404
    with signed_in(console, "officer-e1") as officer:
        rows = list(
            csv.DictReader(
                io.StringIO(officer.get("/console/export/tickets.csv").content.decode("utf-8-sig"))
            )
        )
        assert {x["site_id"] for x in rows} == {"east-1"}


def test_every_console_file_ships_as_package_data() -> None:
    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["*"]
    assert (STATIC_DIR / "__init__.py").is_file()  # a package, so the patterns apply to it
    files = [p for p in STATIC_DIR.iterdir() if p.is_file() and p.suffix != ".py"]
    assert {p.suffix for p in files} == {".html", ".js", ".css"}
    for path in files:
        assert any(fnmatch.fnmatch(path.name, pat) for pat in patterns), path.name
    vendor = STATIC_DIR / "vendor"
    assert (vendor / "__init__.py").is_file()  # the vendored library ships too
    shipped = {p.name for p in vendor.iterdir() if p.is_file() and p.suffix != ".py"}
    assert shipped == {"uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE.md", "README.md"}
    for name in shipped:
        assert any(fnmatch.fnmatch(name, pat) for pat in patterns), name
    assert "1.6.32" in (vendor / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+1", "'+1"),
        ("@x", "'@x"),
        ("冷藏柜 1 温度过高", "冷藏柜 1 温度过高"),
        (None, ""),
        (True, "true"),
        (3, "3"),
    ],
)
def test_csv_cells_never_start_a_formula(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_xlsx_config_wall_and_vendor_reads(console: Console) -> None:
    with httpx.Client(base_url=console.url, timeout=10) as anon:
        for path in ("/console/export/tickets.xlsx", "/console/api/config", "/console/api/wall"):
            assert anon.get(path).status_code == 401, path
        r = anon.get("/console/static/vendor/uPlot.iife.min.js")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/javascript")
        assert anon.get("/console/static/vendor/uPlot.min.css").status_code == 200
        for bad in ("/console/static/vendor/__init__.py", "/console/static/vendor/..%2Froutes.py"):
            assert anon.get(bad).status_code == 404, bad
    with signed_in(console, "reg-east") as reg:
        r = reg.get("/console/export/tickets.xlsx", params={"lang": "en", "status": "open"})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
        assert "filename*=UTF-8''" in r.headers["content-disposition"]
        rows = list(load_workbook(io.BytesIO(r.content), read_only=True).worksheets[0].values)
        assert rows[0][:3] == ("Ticket no.", "Canteen", "Problem")
        assert sorted(str(x[1]) for x in rows[1:]) == sorted(
            ["东区第一小学食堂", "东区第一小学食堂", "东区第二中学食堂"]
        )
        assert {x[6] for x in rows[1:]} == {"open"}
        r = reg.get("/console/export/tickets.xlsx", params={"site_id": "west-1"})
        assert len(list(load_workbook(io.BytesIO(r.content)).worksheets[0].values)) == 1
        assert reg.get("/console/export/tickets.xlsx", params={"lang": "fr"}).status_code == 422
        config = reg.get("/console/api/config").json()
        assert config["time_zone"] == "Asia/Shanghai"
        assert config["rules"] == {k: list(v) for k, v in RULE_LABELS.items()}  # one table
        assert config["sources"] == {k: list(v) for k, v in SOURCE_LABELS.items()}
        wall = reg.get("/console/api/wall", params={"days": 7}).json()
        assert wall["kpis"]["sites"] == 3
        assert wall["kpis"]["open_tickets"] == 3
        assert len(wall["trend"]["days"]) == 7
        assert sum(sum(v) for v in wall["trend"]["by_kind"].values()) == 3  # all within 7 days
        # by kind (the rule), each total the count of the ledger filtered the same way
        totals = wall["trend"]["totals"]
        assert set(totals) <= set(RULE_LABELS)
        assert sum(totals.values()) == 3
        for rule, n in totals.items():
            assert sum(wall["trend"]["by_kind"][rule]) == n
            same = {"rule": rule, "opened_from": wall["trend"]["since"]}
            assert reg.get("/api/v1/tickets", params=same).json()["count"] == n, rule
            csv_rows = reg.get("/console/export/tickets.csv", params=same).text.splitlines()
            assert len(csv_rows) - 1 == n, rule
        later = {"opened_from": "2099-01-01T00:00:00+08:00"}  # the last century the API takes
        assert reg.get("/api/v1/tickets", params=later).json()["count"] == 0
        assert reg.get("/console/api/wall", params={"days": 0}).status_code == 422


def test_overview_in_one_request_matches_sites_and_stored_risk(console: Console) -> None:
    with httpx.Client(base_url=console.url, timeout=10) as anon:
        assert anon.get("/console/api/overview").status_code == 401
    with signed_in(console, "reg-east") as reg:
        overview = reg.get("/console/api/overview").json()
        sites = {s["id"]: s for s in reg.get("/api/v1/sites").json()["data"]}
        summary = reg.get("/console/api/summary").json()
    assert overview["regions"] == {"d-east": "东区"}
    assert [s["id"] for s in overview["data"]] == sorted(sites)  # never west-1
    for s in overview["data"]:
        same = sites[s["id"]]
        for key in ("open_tickets", "overdue_tickets", "active_alarms", "name", "region_id"):
            assert s[key] == same[key], (s["id"], key)
        assert s["risk"] == pytest.approx(summary["risk"][s["id"]]["score"])


def test_publication_setting_read_answers_null_where_nothing_is_set(console: Console) -> None:
    with signed_in(console, "reg-east") as reg:
        r = reg.get("/console/api/publication/d-east")
        assert r.status_code == 200  # not 404: the settings page logs no failed load
        assert r.json() is None
        assert reg.get("/console/api/publication/d-west").status_code == 404  # another district
        assert reg.get("/console/api/publication/nowhere").status_code == 404
        body = {"enabled": True, "show_inspection": True}
        assert reg.put("/api/v1/publication/d-east", json=body).status_code == 200
        got = reg.get("/console/api/publication/d-east").json()
        assert got["region_id"] == "d-east"
        assert got["enabled"] is True
        assert got["updated_by"] == "reg-east"
    with signed_in(console, "officer-e1") as officer:
        assert officer.get("/console/api/publication/d-east").status_code == 403
