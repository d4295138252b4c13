"""The kitchen display's streams: a long popup_seconds keeps the pop-up up, a stalled page is
closed so it reconnects."""

from __future__ import annotations

import time
from pathlib import Path

from edge.delivery import Delivery
from edge.display import KitchenDisplay
from edge.outbox import Outbox
from tests.edge.delivery_support import make_event
from tests.edge.test_display_browser import Cdp, chromium  # noqa: F401  (fixture)
from tests.support.services import wait_until


def test_long_popup_seconds_keeps_the_popup_up(chromium: Cdp, tmp_path: Path) -> None:  # noqa: F811
    display = KitchenDisplay("127.0.0.1", 0, popup_seconds=30 * 24 * 3600)  # "until handled"
    display.start()
    try:
        chromium.call("Page.enable")
        chromium.call("Page.navigate", url=display.url + "/")
        wait_until(lambda: display.clients() == 1, 15, what="page opened its event stream")
        delivery = Delivery(
            site_id="s", box_id="b", outbox=Outbox(tmp_path / "o.sqlite"), display=display
        )
        delivery.deliver(make_event("no_mask"), event_id="evt-long-1")
        wait_until(lambda: chromium.js("window.bkAlerts.length") == 1, 5, what="alert received")
        time.sleep(1.0)
        shown = chromium.js("document.getElementById('popup').classList.contains('show')")
        assert shown is True, "pop-up vanished at once"
    finally:
        display.stop()


def test_a_stream_set_aside_as_stalled_is_closed_so_the_page_reconnects() -> None:
    import socket

    from edge.display import Reminder

    display = KitchenDisplay("127.0.0.1", 0)
    display.start()
    s = socket.create_connection(("127.0.0.1", display.port))
    try:
        s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: display.clients() == 1, 5, what="stream open")
        (q,) = display._clients  # the page stalls: its queue fills up and it is set aside
        for _ in range(q.maxsize):
            q.put_nowait(": filler\n\n")
        display.push(Reminder("e1", "no_mask", "t", "t", "c", None, "2026-01-01T00:00:00Z"))
        assert display.clients() == 0
        s.settimeout(15)
        data, closed, deadline = b"", False, time.monotonic() + 15
        while time.monotonic() < deadline:  # the page reads again: the server must close
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
        assert b": filler" in data
        assert closed, "the stream stays open with pings but will never carry an alert"

    finally:
        s.close()
        display.stop()
