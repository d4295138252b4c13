"""The capture review as a regulator of many canteens uses it: every camera named with its
canteen (the same room name hangs in many kitchens), the false-alarm rates by rule, camera
and model version, and the reviewed captures exported as a dataset for the days chosen."""

from __future__ import annotations

import re
import time
from pathlib import Path

import psycopg
import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.console.conftest import Console, console_errors, viewport
from tests.console.test_console_browser import find, text
from tests.console.test_console_pages import sign_in_as
from tests.console.test_console_phone import sideways
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

MANY = 60
"""More canteens than the page used to ask camera names of (it asked the first 50 only)."""


def add_canteens_with_reviews(db_url: str) -> None:
    """``MANY`` more canteens of the east district, each with a camera named 凉菜专间; the
    last one's camera has two reviewed captures of model version yolo-2026.11."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO sites (id, region_id, name)
               SELECT 'more-' || lpad(g::text, 3, '0'), 'd-east', '东区第' || g || '小学食堂'
               FROM generate_series(1, %(n)s) g""",
            {"n": MANY},
        )
        conn.execute("INSERT INTO edge_boxes (id, site_id) SELECT 'box-' || id, id FROM sites")
        conn.execute(
            """INSERT INTO cameras (id, site_id, box_id, name)
               SELECT 'cam-' || id, id, 'box-' || id, '凉菜专间' FROM sites
               WHERE id LIKE 'more-%'"""
        )
        last = f"more-{MANY:03d}"
        for key, status, reason in (("mv-1", "confirmed", None), ("mv-2", "dismissed", "反光")):
            (fid,) = conn.execute(
                """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier,
                                         occurred_at, processed_at)
                   VALUES (%s, 'violation', %s, %s, 'no_mask', 2, now(), now()) RETURNING id""",
                (key, last, f"cam-{last}"),
            ).fetchone() or (0,)
            conn.execute(
                """INSERT INTO capture_reviews (finding_id, event_id, site_id, camera_id, rule,
                                                model_version, status, reason, reviewed_by,
                                                reviewed_at)
                   VALUES (%s, %s, %s, %s, 'no_mask', 'yolo-2026.11', %s, %s, 'reg-east', now())""",
                (fid, f"ev-{key}", last, f"cam-{last}", status, reason),
            )


def test_rates_name_every_camera_with_its_canteen_and_the_dataset_exports(
    module_console: Console, module_browser: WebDriver, module_downloads: Path
) -> None:
    c, b = module_console, module_browser
    add_canteens_with_reviews(c.db_url)
    viewport(b, 390, 844, mobile=True)
    try:
        sign_in_as(b, c, "reg-east", "/console/reviews")
        find(b, "#reviews li[data-review-id]")
        cameras = text(b, "#stats-camera") or ""
        # the 60th canteen's camera by name and canteen, never the anonymous 设备
        assert f"东区第{MANY}小学食堂 · 凉菜专间" in cameras
        assert "50% 误报（已审 2 条）" in cameras
        assert "设备" not in cameras
        assert "东区第一小学食堂 · 凉菜专间" in cameras  # the seeded camera, same room name
        assert "cam-" not in (text(b, "main") or "")
        models = text(b, "#stats-model") or ""
        assert "yolo-2026.11" in models
        assert "未记录版本" in models  # the seeded captures carry no version
        assert sideways(b) <= 0

        # the dataset of the days chosen; a last day before the first is said in words
        b.execute_script(
            "const f = document.getElementById('export-from'), t = document.getElementById"
            "('export-to'); window.bkTo = t.value; t.value = f.value; f.value = '2099-01-01';"
        )
        find(b, "#export-go").click()
        wait_until(
            lambda: text(b, "#export-status") == "结束日期不能早于开始日期。", what="the refusal"
        )
        b.execute_script(
            "document.getElementById('export-from').value = '2001-01-01';"
            "document.getElementById('export-to').value = window.bkTo;"
        )
        before = set(module_downloads.iterdir())
        find(b, "#export-go").click()
        wait_until(  # the page says when the file is saved, by the API's name for it
            lambda: (
                re.fullmatch(
                    r"已下载 captures-20010101-\d{8}\.zip。", text(b, "#export-status") or ""
                )
                is not None
            ),
            timeout=20,
            what="saved",
        )
        wait_until(
            lambda: any(
                p.name.startswith("captures-20010101-") and p.suffix == ".zip"
                for p in set(module_downloads.iterdir()) - before
            ),
            timeout=20,
            what="the dataset downloaded",
        )
        time.sleep(0.5)  # the file complete
        assert console_errors(b) == []
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
