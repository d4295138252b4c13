"""The kitchen-display page in a real headless Chromium: the pop-up shows within a second."""

from __future__ import annotations

import base64
import itertools
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from edge.delivery import Delivery
from edge.display import KitchenDisplay
from edge.outbox import Outbox
from tests.edge.delivery_support import make_event
from tests.support.services import wait_until

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


class Cdp:
    """A minimal Chrome DevTools Protocol client over one page target."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        mid = next(self.ids)
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=10))
            if msg.get("id") == mid:
                assert "error" not in msg, msg
                result: dict[str, Any] = msg["result"]
                return result

    def js(self, expr: str, *, gesture: bool = False) -> Any:
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, userGesture=gesture)
        return r["result"].get("value")


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Cdp]:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is required (scripts/system-deps.sh installs it)"
    proc = subprocess.Popen(
        [
            binary,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--remote-debugging-port=0",
            f"--user-data-dir={tmp_path / 'chrome'}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        port = None
        deadline = time.monotonic() + 30
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if m := re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line):
                port = int(m.group(1))
        assert port, "chromium did not start its DevTools endpoint"
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list").json()
        page = next(p for p in pages if p["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            yield Cdp(ws)
    finally:
        proc.terminate()  # lets chromium stop its own helper processes
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_popup_with_snapshot_in_browser(chromium: Cdp, tmp_path: Path) -> None:
    display = KitchenDisplay(
        "127.0.0.1", 0, popup_seconds=2, camera_names={"cam-1": "凉菜专间"},
        time_zone="Pacific/Kiritimati",  # UTC+14: never the test machine's own zone
    )  # fmt: skip
    display.start()
    try:
        chromium.call("Page.enable")
        chromium.call("Page.navigate", url=display.url + "/")
        wait_until(lambda: display.clients() == 1, 15, what="page opened its event stream")

        def clock_matches() -> bool:  # the kitchen's wall clock, not the kiosk computer's
            shown = str(chromium.js("document.getElementById('clock').textContent"))
            return shown[:5] == datetime.now(ZoneInfo("Pacific/Kiritimati")).strftime("%H:%M")

        wait_until(clock_matches, 3, what="clock in the display's zone")
        wait_until(
            lambda: (
                chromium.js("document.getElementById('conn').classList.contains('down')") is False
            ),
            5,
            what="page connected",
        )
        assert chromium.js("document.getElementById('popup').classList.contains('show')") is False
        delivery = Delivery(
            site_id="site-1", box_id="box-1", outbox=Outbox(tmp_path / "o.sqlite"), display=display
        )
        t0 = time.monotonic()
        prep = delivery.deliver(make_event("no_mask"), event_id="evt-browser-1")
        wait_until(
            lambda: (
                chromium.js("document.getElementById('popup').classList.contains('show')") is True
            ),
            1.0,
            what="pop-up within 1 s",
        )
        shown_after = time.monotonic() - t0
        assert shown_after < 1.0
        assert chromium.js("document.getElementById('title-zh').textContent") == "未戴口罩"
        assert chromium.js("document.getElementById('title-en').textContent") == "No mask"
        meta = chromium.js("document.getElementById('meta').textContent")
        assert "凉菜专间" in meta
        when = datetime.fromisoformat(display.recent()[-1].ts).astimezone(
            ZoneInfo("Pacific/Kiritimati")
        )
        assert meta.endswith(when.strftime("%H:%M:%S")), meta
        assert "cam-1" not in meta  # words, never the internal id
        assert chromium.js("document.getElementById('advice').textContent").startswith(
            "现在要做：请立即戴好口罩。"
        )
        # the snapshot is loaded and decoded by the browser at its real size
        wait_until(
            lambda: (
                chromium.js(
                    "document.getElementById('snapshot').complete && "
                    "document.getElementById('snapshot').naturalWidth"
                )
                == prep.image.width_px
            ),
            5,
            what="snapshot decoded",
        )
        # auto-dismiss after popup_seconds
        wait_until(
            lambda: (
                chromium.js("document.getElementById('popup').classList.contains('show')") is False
            ),
            5,
            what="auto-dismiss",
        )
    finally:
        display.stop()


def test_display_fits_screens_sounds_once_armed_and_acknowledges(
    chromium: Cdp, tmp_path: Path
) -> None:
    display = KitchenDisplay("127.0.0.1", 0, popup_seconds=30, camera_names={"cam-1": "切配间"})
    display.start()
    delivery = Delivery(
        site_id="site-1", box_id="box-1", outbox=Outbox(tmp_path / "o.sqlite"), display=display
    )
    try:
        delivery.deliver(make_event("mixed_cutting_board"), event_id="evt-early-1")
        chromium.call("Page.enable")
        chromium.call("Page.navigate", url=display.url + "/")
        wait_until(lambda: display.clients() == 1, 15, what="page opened its event stream")
        # a reminder from before the page opened is listed from /recent
        wait_until(
            lambda: (
                "生熟砧板混用" in (chromium.js("document.getElementById('recent').innerText") or "")
            ),
            5,
            what="earlier reminder listed",
        )
        chromium.js("document.getElementById('arm').click()", gesture=True)
        assert chromium.js("document.getElementById('arm').getAttribute('aria-pressed')") == "true"
        delivery.deliver(make_event("no_mask"), event_id="evt-now-001")
        wait_until(
            lambda: chromium.js("document.getElementById('popup').classList.contains('show')"),
            1.0,
            what="pop-up within 1 s",
        )
        assert chromium.js("window.bkBeeps") == 1  # the armed page sounded
        spoken = chromium.js("window.bkSpoken")
        assert spoken == [] or spoken[0].startswith("未戴口罩")  # where speech exists
        body = chromium.js("document.body.innerText")
        assert "cam-1" not in body
        assert "evt-now-001" not in body
        for width, height in ((1280, 720), (1920, 1080)):
            chromium.call(
                "Emulation.setDeviceMetricsOverride",
                width=width, height=height, deviceScaleFactor=1, mobile=False,
            )  # fmt: skip
            over = chromium.js(
                "(() => { const e = document.scrollingElement; const p = document.getElementById"
                "('popup').getBoundingClientRect(); const a = document.getElementById('ack')"
                ".getBoundingClientRect(); return [e.scrollWidth - innerWidth, "
                "e.scrollHeight - innerHeight, a.bottom <= innerHeight, p.width]; })()"
            )
            assert over[0] <= 0, (width, over)
            assert over[1] <= 0, (width, over)
            assert over[2] is True, (width, over)  # the acknowledge button is on screen
            if width == 1280:  # kept for the docs (docs/console.md)
                shot = chromium.call("Page.captureScreenshot", format="png")["data"]
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                (SCREENSHOTS / "edge-display-1280x720.png").write_bytes(base64.b64decode(shot))
        chromium.js("document.getElementById('ack').click()", gesture=True)
        wait_until(lambda: display.recent()[0].acknowledged_at is not None, 3, what="acknowledged")
        assert display.recent()[0].event_id == "evt-now-001"
        wait_until(
            lambda: not chromium.js("document.getElementById('popup').classList.contains('show')"),
            2,
            what="pop-up closed",
        )
        wait_until(
            lambda: "已处理" in chromium.js("document.querySelector('#recent li').innerText"),
            2,
            what="the recent list marks it done",
        )
        assert httpx.post(display.url + "/ack/unknown-event").status_code == 404
    finally:
        display.stop()
