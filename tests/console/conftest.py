"""Fixtures of the console tests: a seeded two-district world, the API on a port, a real Chromium.

District ``d-east`` (canteens ``east-1``, ``east-2``, ``east-3``) and district ``d-west``
(``west-1``) under prefecture ``pref``. ``east-1`` has an overdue temperature ticket with a
photo, and an open camera ticket; ``east-2`` an open ticket, ``east-3`` none; ``west-1``
an overdue ticket that the east regulator must never see. Users: ``reg-east``
(regulator of d-east), ``insp-east`` (inspector, 执法检查人员, of d-east), ``officer-e1``
(officer of east-1), password ``PASSWORD``.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import psycopg
import pytest
import uvicorn

from api.app import create_app
from api.auth.scope import Role, SiteScope
from api.auth.users import create_user
from api.services.evidence import LocalDirStore, attach_photo
from api.services.risk import RiskSettings, compute, store
from api.services.tickets import process_findings
from api.settings import ApiSettings
from bkcommon.settings import CommonSettings
from bkcommon.sitefile import parse_site_file
from bkcommon.timeutil import utcnow
from brightkitchen.registry import sync_registry
from tests.support.services import free_port, wait_until

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

PASSWORD = "correct horse battery"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"


def site_file() -> dict[str, Any]:
    """Two districts of one prefecture; east-1 has an officer, sensors and a camera."""
    return {
        "regions": [
            {"id": "pref", "name": "示范市"},
            {"id": "d-east", "name": "东区", "parent": "pref"},
            {"id": "d-west", "name": "西区", "parent": "pref"},
        ],
        "people": [{"id": "officer-1", "name": "王食安", "channels": []}],
        "sites": [
            {
                "id": "east-1",
                "name": "东区第一小学食堂",
                "region": "d-east",
                "address": "东区一路 1 号",
                "people": {"officer": ["officer-1"]},
                "sensors": [
                    {"id": "fridge-e1", "name": "冷藏柜 1", "profile": "fridge"},
                    {"id": "freezer-e1", "name": "冷冻柜 1", "profile": "freezer"},
                ],
                "edge_boxes": [
                    {"id": "box-e1", "cameras": [{"id": "cam-e1", "name": "凉菜专间", "url": "x"}]}
                ],
            },
            {"id": "east-2", "name": "东区第二中学食堂", "region": "d-east"},
            {"id": "east-3", "name": "东区幼儿园食堂", "region": "d-east"},
            {"id": "west-1", "name": "西区实验学校食堂", "region": "d-west"},
        ],
    }


def png_bytes(width: int = 64, height: int = 48) -> bytes:
    """A small real PNG (a red square on grey) for evidence."""
    img = np.full((height, width, 3), 128, dtype=np.uint8)
    img[8:40, 16:48] = (0, 0, 255)
    ok, buf = cv2.imencode(".png", img)
    assert ok
    return buf.tobytes()


@dataclass
class World:
    """What the seed created: ticket ids by name, the evidence sha256."""

    tickets: dict[str, int] = field(default_factory=dict)
    evidence_sha: str = ""
    now: datetime = field(default_factory=utcnow)


def _finding(
    conn: psycopg.Connection[Any],
    *,
    key: str,
    site: str,
    subject: str,
    rule: str,
    tier: int,
    at: datetime,
    kind: str = "alarm_raised",
) -> None:
    conn.execute(
        """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                 payload)
           VALUES (%s, %s, %s, %s, %s, %s, %s, '{}')""",
        (key, kind, site, subject, rule, tier, at),
    )


def seed(conn: psycopg.Connection[Any], settings: ApiSettings) -> World:
    """Registry, users, tickets through the ticket engine, a photo, readings and risk scores."""
    w = World()
    sync_registry(conn, parse_site_file(site_file()))
    create_user(
        conn, username="reg-east", role=Role.REGULATOR, password=PASSWORD, region_id="d-east"
    )
    create_user(
        conn, username="insp-east", role=Role.INSPECTOR, password=PASSWORD, region_id="d-east"
    )
    create_user(
        conn, username="officer-e1", role=Role.OFFICER, password=PASSWORD, person_id="officer-1"
    )
    old = w.now - timedelta(days=3)  # tier 1 → due after 24 h: overdue now
    _finding(conn, key="f1", site="east-1", subject="fridge-e1", rule="temp_high", tier=1, at=old)
    _finding(conn, key="f2", site="west-1", subject="west-1", rule="temp_high", tier=1, at=old)
    process_findings(conn, now=old, settings=settings)
    recent = w.now - timedelta(hours=1)
    _finding(
        conn,
        key="f3",
        site="east-1",
        subject="cam-e1",
        rule="no_mask",
        tier=2,
        at=recent,
        kind="violation",
    )
    _finding(conn, key="f4", site="east-2", subject="east-2", rule="temp_high", tier=3, at=recent)
    process_findings(conn, now=recent, settings=settings)
    for tid, site_id, rule in conn.execute("SELECT id, site_id, rule FROM tickets").fetchall():
        w.tickets[f"{site_id}:{rule}"] = int(tid)
    for key, camera in (("rv-1", "cam-e1"), ("rv-2", "cam-e1")):  # captures waiting for review
        (fid,) = conn.execute(
            """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at,
                                     processed_at)
               VALUES (%s, 'violation', 'east-1', %s, 'no_chef_hat', 2, %s, %s) RETURNING id""",
            (key, camera, recent, recent),
        ).fetchone() or (0,)
        conn.execute(
            """INSERT INTO capture_reviews (finding_id, event_id, site_id, camera_id, rule)
               VALUES (%s, %s, 'east-1', %s, 'no_chef_hat')""",
            (fid, f"ev-{key}", camera),
        )
    stored = attach_photo(
        conn,
        LocalDirStore(settings.evidence_dir),
        ticket_id=w.tickets["east-1:temp_high"],
        data=png_bytes(),
        filename="fridge-door.png",
        uploaded_by="officer-e1",
        scope=SiteScope.everything(),
        now=w.now - timedelta(hours=2),
    )
    w.evidence_sha = stored.sha256
    with conn.cursor() as cur:  # 24 h of fridge readings, every 10 minutes
        cur.executemany(
            "INSERT INTO sensor_readings (sensor_id, ts, temp_c) VALUES ('fridge-e1', %s, %s)",
            [
                (w.now - timedelta(minutes=10 * i), 4.0 + 3.0 * np.sin(i / 12.0))
                for i in range(1, 144)
            ],
        )
        # as the ingest writer leaves them: newest reading time, and when it arrived
        cur.execute(
            "UPDATE sensors SET last_reading_at = %s, last_received_at = %s WHERE id = 'fridge-e1'",
            (w.now - timedelta(minutes=10), w.now - timedelta(minutes=9)),
        )
    has_store = conn.execute("SELECT to_regclass('readings_5m_store')").fetchone()
    if has_store and has_store[0]:  # plain PostgreSQL: the rollup ingest maintains
        conn.execute(
            """INSERT INTO readings_5m_store (sensor_id, bucket, temp_min, temp_max, temp_sum, n)
               SELECT sensor_id, to_timestamp(floor(extract(epoch FROM ts) / 300) * 300),
                      min(temp_c), max(temp_c), sum(temp_c), count(*)
               FROM sensor_readings GROUP BY 1, 2"""
        )
    scores = compute(conn=conn, now=w.now, scope=SiteScope.everything(), settings=RiskSettings())
    with conn.transaction():
        store(conn, scores)
    return w


@dataclass
class Console:
    """The running API (with the console) and what was seeded."""

    url: str
    world: World
    db_url: str
    settings: ApiSettings


@contextmanager
def serving(db_url: str, folder: Path) -> Iterator[Console]:
    """Seed ``db_url`` and serve the API with the console on a free port (workers off)."""
    settings = ApiSettings(workers_enabled=False, evidence_dir=folder / "evidence")
    with psycopg.connect(db_url, autocommit=True) as conn:
        world = seed(conn, settings)
    app = create_app(settings, common=CommonSettings(database_url=db_url))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,  # open event streams must not hold the teardown
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, timeout=15, what="uvicorn start")
    wait_until(lambda: app.state.live.wait_listening(0.1), timeout=10, what="live hub")
    yield Console(url=f"http://127.0.0.1:{port}", world=world, db_url=db_url, settings=settings)
    server.should_exit = True
    thread.join(timeout=10)


@contextmanager
def chromium(folder: Path, downloads: Path, size: str = "1280,900") -> Iterator[Any]:
    """A headless Chromium through chromedriver (the system's; Selenium Manager never runs)."""
    if not (shutil.which(CHROMEDRIVER) and shutil.which(CHROMIUM)):
        pytest.fail("chromium and chromium-driver are required (scripts/system-deps.sh)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--autoplay-policy=user-gesture-required",
        f"--window-size={size}",
        f"--user-data-dir={folder / 'chrome-profile'}",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
            "intl.accept_languages": "zh-CN",
        },
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def console(db_url: str, tmp_path: Path) -> Iterator[Console]:
    """The API with the console over a seeded world, for one test."""
    with serving(db_url, tmp_path) as c:
        yield c


@pytest.fixture
def downloads(tmp_path: Path) -> Path:
    """Where the browser saves downloads."""
    path = tmp_path / "downloads"
    path.mkdir()
    return path


@pytest.fixture
def browser(tmp_path: Path, downloads: Path) -> Iterator[Any]:
    """A headless Chromium for one test."""
    with chromium(tmp_path, downloads) as driver:
        yield driver


@pytest.fixture(scope="module")
def module_db(pg_server: str, template_db: str) -> Iterator[str]:
    """A fresh migrated database shared by the tests of one module (they share one server)."""
    name = f"bk_tm_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    yield f"{pg_server}/{name}"
    with psycopg.connect(f"{pg_server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def module_console(module_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One API server over one seeded world for every test of a module."""
    with serving(module_db, tmp_path_factory.mktemp("console")) as c:
        yield c


@pytest.fixture(scope="module")
def module_downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the module's browser saves downloads."""
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def module_browser(
    tmp_path_factory: pytest.TempPathFactory, module_downloads: Path
) -> Iterator[Any]:
    """One headless Chromium for every test of a module."""
    with chromium(tmp_path_factory.mktemp("chrome"), module_downloads) as driver:
        yield driver


EXPECTED = ("/api/v1/auth/me - Failed to load resource: the server responded with a status of 401",)
"""Asking who is signed in before anyone is: the sign-in page follows, not an error."""


def console_errors(driver: WebDriver) -> list[str]:
    """Severe messages of the browser console since the last call (JS errors, failed loads)."""
    logs: list[dict[str, str]] = driver.get_log("browser")  # type: ignore[attr-defined]
    return [
        e["message"]
        for e in logs
        if e["level"] == "SEVERE" and not any(x in e["message"] for x in EXPECTED)
    ]


def viewport(driver: WebDriver, width: int, height: int, *, mobile: bool = False) -> None:
    """Make the page's viewport exactly ``width`` × ``height`` CSS pixels (a screen, a phone)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def shot(driver: WebDriver, name: str) -> None:
    """Keep a screenshot of a main page for the docs."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / name))
