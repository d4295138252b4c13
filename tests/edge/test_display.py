"""The kitchen-display page: real HTTP server, real SSE client, snapshot fetch."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from edge.delivery import Delivery
from edge.display import KitchenDisplay, Reminder
from edge.outbox import Outbox
from tests.edge.delivery_support import make_event
from tests.support.services import wait_until


@pytest.fixture
def display() -> Iterator[KitchenDisplay]:
    d = KitchenDisplay("127.0.0.1", 0, keep=3, popup_seconds=5)
    d.start()
    yield d
    d.stop()


class SseReader:
    """Reads one /events stream in a thread, recording (monotonic time, event data)."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[float, dict[str, object]]] = []
        self.open = threading.Event()
        self._t = threading.Thread(target=self._run, args=(url,), daemon=True)
        self._t.start()

    def _run(self, url: str) -> None:
        with httpx.Client(timeout=httpx.Timeout(5, read=30)) as c, c.stream("GET", url) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            self.open.set()
            event = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "alert":
                    self.events.append((time.monotonic(), json.loads(line[6:])))


def test_page_health_and_404(display: KitchenDisplay) -> None:
    page = httpx.get(display.url + "/")
    assert page.status_code == 200
    assert "EventSource" in page.text
    assert "http" not in page.text.split("<script>")[1]
    assert "未戴口罩" not in page.text  # titles come with events
    assert httpx.get(display.url + "/healthz").text == "ok\n"
    assert httpx.get(display.url + "/snapshot/nothing-here.jpg").status_code == 404
    assert httpx.get(display.url + "/nope").status_code == 404


def test_violation_reaches_open_page_within_a_second(
    display: KitchenDisplay, tmp_path: Path
) -> None:
    sse = SseReader(display.url + "/events")
    assert sse.open.wait(5)
    wait_until(lambda: display.clients() == 1, 5, what="stream registered")
    delivery = Delivery(
        site_id="site-1", box_id="box-1", outbox=Outbox(tmp_path / "o.sqlite"), display=display
    )
    t0 = time.monotonic()
    prep = delivery.deliver(make_event("no_mask"), event_id="evt-display-1")
    wait_until(lambda: sse.events != [], 1.0, what="SSE alert within 1 s")
    arrived, data = sse.events[0]
    assert arrived - t0 < 1.0
    assert data["event_id"] == "evt-display-1"
    assert data["title_zh"] == "未戴口罩"
    assert data["title_en"] == "No mask"
    assert data["camera_id"] == "cam-1"
    snap = httpx.get(display.url + str(data["snapshot_url"]))
    assert snap.status_code == 200
    assert snap.headers["content-type"] == "image/jpeg"
    assert snap.content == prep.image.jpeg
    img = cv2.imdecode(np.frombuffer(snap.content, np.uint8), cv2.IMREAD_COLOR)
    assert img.shape[1] == 640
    assert delivery.outbox.depth() == 1  # and it is queued for the backend


def test_only_last_k_snapshots_kept(display: KitchenDisplay) -> None:
    for i in range(5):
        display.push(
            Reminder(
                event_id=f"evt-{i:05d}",
                rule="pest",
                title_zh="有害生物",
                title_en="Pest",
                camera_id="c",
                zone=None,
                ts="2026-01-01T00:00:00Z",
            ),
            b"\xff\xd8jpeg%d" % i,
        )
    assert display.snapshot("evt-00000") is None
    assert display.snapshot("evt-00001") is None
    assert display.snapshot("evt-00004") == b"\xff\xd8jpeg4"
    assert httpx.get(display.url + "/snapshot/evt-00002.jpg").status_code == 200
