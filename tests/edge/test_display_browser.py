"""The kitchen-display page in a real headless Chromium: the pop-up shows within a second."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from edge.delivery import Delivery
from edge.display import KitchenDisplay
from edge.outbox import Outbox
from tests.edge.delivery_support import make_event
from tests.support.services import wait_until


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

    def js(self, expr: str) -> Any:
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
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
    display = KitchenDisplay("127.0.0.1", 0, popup_seconds=2)
    display.start()
    try:
        chromium.call("Page.enable")
        chromium.call("Page.navigate", url=display.url + "/")
        wait_until(lambda: display.clients() == 1, 15, what="page opened its event stream")
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
        assert "cam-1" in chromium.js("document.getElementById('meta').textContent")
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
