"""Live updates end to end: a row written to PostgreSQL reaches the open pages without reload.

One API server and one Chromium serve the whole module. Alarms are inserted as ingest
writes them; the migration's trigger announces them, the API's hub fans them out over
server-sent events, and the pages redraw.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from api.services.tickets import process_findings
from bkcommon.timeutil import utcnow
from tests.console.conftest import PASSWORD, Console, console_errors, shot, viewport
from tests.console.test_console_browser import attr, find, sign_in, text
from tests.support.services import wait_until

pytestmark = pytest.mark.slow

LIVE_S = 2.0  # the promise: a change shows within 2 s


def raise_alarm(db_url: str, *, site: str, rule: str, sensor: str | None = None,
                camera: str | None = None, tier: int = 1) -> int:  # fmt: skip
    """Insert an active alarm as the ingest rules do; return its id."""
    now = utcnow()
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            """INSERT INTO alarms (alarm_key, site_id, sensor_id, camera_id, rule, tier,
                                   started_at, raised_at, peak_temp_c)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (f"{sensor or camera}:{rule}:{now.isoformat()}", site, sensor, camera, rule, tier,
             now - timedelta(minutes=20), now, 11.5 if rule == "temp_high" else None),
        ).fetchone()  # fmt: skip
    assert row is not None
    return int(row[0])


def clear_alarm(db_url: str, alarm_id: int) -> None:
    """Clear an alarm as the rules do when the temperature is back."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE alarms SET status = 'cleared', cleared_at = now() WHERE id = %s", (alarm_id,)
        )


@contextmanager
def event_stream(console: Console, username: str, **headers: str) -> Iterator[queue.Queue[str]]:
    """Lines of ``/console/api/events`` for ``username``, read in a thread into a queue."""
    lines: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    client = httpx.Client(base_url=console.url, timeout=httpx.Timeout(10, read=None))
    r = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text

    def read() -> None:
        try:
            with client.stream("GET", "/console/api/events", headers=headers) as resp:
                lines.put(f"status: {resp.status_code}")
                for line in resp.iter_lines():
                    if stop.is_set():
                        return
                    lines.put(line)
        except httpx.HTTPError:
            if not stop.is_set():
                raise

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        yield lines
    finally:
        stop.set()
        client.close()


def next_event(lines: queue.Queue[str], timeout: float = LIVE_S) -> dict[str, str]:
    """The next whole SSE event (its fields) within ``timeout`` seconds; comments skipped."""
    ends = time.monotonic() + timeout
    fields: dict[str, str] = {}
    while True:
        line = lines.get(timeout=max(0.01, ends - time.monotonic()))
        if line.startswith("status:") or line.startswith(":"):
            continue
        if not line:
            if "event" in fields:
                return fields
            continue
        key, _, value = line.partition(":")
        fields[key] = value.strip()


def test_stream_is_scoped_replays_and_resyncs(module_console: Console) -> None:
    c = module_console
    with event_stream(c, "reg-east") as lines:
        hello = next_event(lines, timeout=10)
        assert hello["event"] == "hello"
        raise_alarm(c.db_url, site="west-1", rule="temp_high")  # another district: never seen
        east = raise_alarm(c.db_url, site="east-2", rule="sensor_offline")
        ev = next_event(lines)
        assert ev["event"] == "alarm"
        assert '"site_id": "east-2"' in ev["data"]
        assert f'"id": {east}' in ev["data"]
        assert '"rule": "sensor_offline"' in ev["data"]
        assert '"op": "insert"' in ev["data"]
        clear_alarm(c.db_url, east)
        cleared = next_event(lines)
        assert '"status": "cleared"' in cleared["data"]
        assert '"op": "update"' in cleared["data"]
        with pytest.raises(queue.Empty):
            next_event(lines, timeout=0.5)  # the west-1 alarm never arrived
    # reconnecting with the last id replays what was missed meanwhile, in scope only
    missed = raise_alarm(c.db_url, site="east-2", rule="low_battery", tier=3)
    raise_alarm(c.db_url, site="west-1", rule="low_battery", tier=3)
    time.sleep(0.3)
    with event_stream(c, "reg-east", **{"Last-Event-ID": cleared["id"]}) as lines:
        assert next_event(lines, timeout=10)["event"] == "hello"
        replayed = next_event(lines)
        assert replayed["event"] == "alarm"
        assert f'"id": {missed}' in replayed["data"]
        with pytest.raises(queue.Empty):
            next_event(lines, timeout=0.5)
    # an id from another process (or a restart) cannot be replayed: the page reloads
    with event_stream(c, "officer-e1", **{"Last-Event-ID": "0000-7"}) as lines:
        assert next_event(lines, timeout=10)["event"] == "hello"
        assert next_event(lines)["event"] == "resync"
    with httpx.Client(base_url=c.url, timeout=5) as anon:
        assert anon.get("/console/api/events").status_code == 401


def test_new_alarm_appears_on_the_overview_without_reload(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    sign_in(b, c, "reg-east")
    find(b, "#sites-table tr.site-row")
    wait_until(lambda: attr(b, "#live-state", "data-state") == "open", what="live badge open")
    assert text(b, "#live-state") == "● 实时"
    marker = b.execute_script("window.bkNoReload = 1; return window.bkNoReload;")
    assert marker == 1
    before = int(text(b, "#stat-alarms") or 0)
    assert attr(b, "tr[data-site-id='east-3']", "data-state") == "green"
    started = time.monotonic()
    raise_alarm(c.db_url, site="east-3", rule="temp_high", tier=1)
    wait_until(
        lambda: attr(b, "tr[data-site-id='east-3']", "data-state") == "amber",
        timeout=LIVE_S,
        what="east-3 turns amber",
    )
    assert time.monotonic() - started < LIVE_S
    assert int(text(b, "#stat-alarms") or 0) == before + 1
    toast = find(b, "#toasts li[data-kind='alarm']", timeout=1)
    assert "温度超标" in toast.text
    assert "东区幼儿园食堂" in toast.text
    assert b.execute_script("return window.bkNoReload") == 1  # the same page, never reloaded
    shot(b, "overview.png")
    assert console_errors(b) == []


def test_overview_redraws_for_what_it_counts_and_keeps_up_with_a_stream(
    module_console: Console, module_browser: WebDriver
) -> None:
    """Comments change nothing the overview counts: no redraw. A stream of alarms with no
    pause longer than the old 250 ms debounce still shows, redrawn about once a second."""
    c, b = module_console, module_browser
    b.delete_all_cookies()
    sign_in(b, c, "reg-east")
    find(b, "#sites-table tr.site-row")
    wait_until(lambda: attr(b, "#live-state", "data-state") == "open", what="live badge open")
    fetches = (
        "return performance.getEntriesByType('resource')"
        ".filter((e) => e.name.includes('/console/api/overview')).length"
    )
    b.execute_script("performance.clearResourceTimings()")
    tid = c.world.tickets["east-1:temp_high"]
    with httpx.Client(base_url=c.url, timeout=10) as api:
        r = api.post("/api/v1/auth/login", json={"username": "reg-east", "password": PASSWORD})
        assert r.status_code == 200
        for i in range(5):
            made = api.post(f"/api/v1/tickets/{tid}/comments", json={"text": f"注意 {i}"})
            assert made.status_code == 201, made.text
    time.sleep(1.5)
    assert b.execute_script(fetches) == 0  # the comments reached the page, not the overview

    before = int(text(b, "#stat-alarms") or 0)
    started = time.monotonic()
    raised = []
    while time.monotonic() - started < 5:  # an alarm every 150 ms for 5 s
        raised.append(raise_alarm(c.db_url, site="east-2", rule="temp_high"))
        time.sleep(0.15)
    shown_during = int(text(b, "#stat-alarms") or 0)
    redraws = b.execute_script(fetches)
    assert shown_during > before, "the stream never paused, so the overview never redrew"
    assert 3 <= redraws <= 7, redraws  # about once a second, not once per alarm (30)
    wait_until(
        lambda: int(text(b, "#stat-alarms") or 0) == before + len(raised),
        timeout=LIVE_S + 1,
        what="every alarm counted once the stream ends",
    )
    for alarm in raised:
        clear_alarm(c.db_url, alarm)
    wait_until(lambda: int(text(b, "#stat-alarms") or 0) == before, what="cleared again")
    assert console_errors(b) == []


def test_kitchen_page_speaks_plain_words_and_acknowledges(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    b.delete_all_cookies()
    sign_in(b, c, "officer-e1", "/console/kitchen")
    # the officer's one canteen: the camera caught someone without a mask an hour ago
    mask = c.world.tickets["east-1:no_mask"]
    alert = find(b, f"#kitchen-alert[data-alarm-id='t{mask}']")
    assert "未戴口罩 · 凉菜专间" in alert.text
    assert "请立即戴好口罩" in alert.text
    find(b, "#kitchen-ack").click()
    find(b, "#kitchen .kitchen-ok", timeout=LIVE_S)  # handled: all clear
    find(b, "#kitchen-arm").click()
    wait_until(lambda: attr(b, "#kitchen-arm", "aria-pressed") == "true", what="sound armed")
    alarm = raise_alarm(c.db_url, site="east-1", rule="temp_high", sensor="fridge-e1")
    alert = find(b, f"#kitchen-alert[data-alarm-id='{alarm}']", timeout=LIVE_S)
    words = alert.text
    assert "冷藏温度超标" in words
    assert "冷藏柜 1" in words
    assert "现在要做" in words
    assert "压缩机" in words
    body = b.find_element(By.TAG_NAME, "body").text
    for internal in ("fridge-e1", "temp_high", "east-1", f"#{alarm}"):
        assert internal not in body
    wait_until(lambda: (b.execute_script("return window.bkKitchenBeeps || 0") or 0) >= 2,
               what="alert sound played")  # fmt: skip
    first = find(b, "#kitchen-recent li")
    assert "未消除" in first.text
    for width, height in ((1280, 720), (1920, 1080)):
        viewport(b, width, height)
        inner = b.execute_script("return [window.innerWidth, window.innerHeight]")
        overflow = b.execute_script(
            "const e = document.scrollingElement;"
            "return [e.scrollWidth - e.clientWidth, e.scrollHeight - e.clientHeight];"
        )
        assert overflow[0] <= 0, (width, inner, overflow)
        assert overflow[1] <= 0, (width, inner, overflow)
        shot(b, f"kitchen-{width}x{height}.png")
    b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    find(b, "#kitchen-ack").click()

    def acknowledged() -> bool:
        with psycopg.connect(c.db_url) as conn:
            row = conn.execute(
                "SELECT status, acknowledged_by FROM alarms WHERE id = %s", (alarm,)
            ).fetchone()
        return row == ("acknowledged", "officer-1")

    wait_until(acknowledged, timeout=5, what="alarm acknowledged by the officer")
    wait_until(lambda: text(b, "#kitchen-message") == "已确认，正在处理。", what="told so")
    clear_alarm(c.db_url, alarm)
    find(b, "#kitchen .kitchen-ok", timeout=LIVE_S)
    # a new camera violation: the ticket engine opens its ticket, the kitchen page words it
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        conn.execute(
            """INSERT INTO findings (finding_key, kind, site_id, subject, rule, tier, occurred_at)
               VALUES ('kitchen-board', 'violation', 'east-1', 'cam-e1', 'mixed_cutting_board',
                       2, now())"""
        )
        process_findings(conn, now=utcnow(), settings=c.settings)
        (ticket,) = conn.execute(
            "SELECT id FROM tickets WHERE rule = 'mixed_cutting_board' AND status = 'open'"
        ).fetchone() or (0,)
    alert = find(b, f"#kitchen-alert[data-alarm-id='t{ticket}']", timeout=LIVE_S)
    assert "生熟砧板混用 · 凉菜专间" in alert.text
    assert "按颜色区分生熟" in alert.text
    find(b, "#kitchen-ack").click()
    find(b, "#kitchen .kitchen-ok", timeout=LIVE_S)
    with psycopg.connect(c.db_url) as conn:
        rows = conn.execute(
            "SELECT status FROM tickets WHERE id = ANY(%s)", ([mask, ticket],)
        ).fetchall()
    assert rows == [("acknowledged",), ("acknowledged",)]
    assert console_errors(b) == []


def test_missing_page_is_not_a_permission_error(
    module_console: Console, module_browser: WebDriver
) -> None:
    b = module_browser
    b.get(module_console.url + "/console/no-such-page")
    find(b, "#page-missing")
    assert "没有这个页面" in (text(b, "#page-missing") or "")
    assert "管辖" not in (text(b, "main") or "")


def test_wall_screen_counts_tiles_trends_and_goes_live(
    module_console: Console, module_browser: WebDriver
) -> None:
    c, b = module_console, module_browser
    b.delete_all_cookies()
    viewport(b, 1920, 1080)
    try:
        sign_in(b, c, "reg-east", "/console/wall")
        find(b, "#wall #districts .tile")
        tiles = {
            t.get_attribute("data-site-id"): t.get_attribute("data-state")
            for t in b.find_elements(By.CSS_SELECTOR, "#districts .tile")
        }
        assert set(tiles) == {"east-1", "east-2", "east-3"}  # never the other district
        assert (
            not b.find_elements(By.CSS_SELECTOR, "header.top:not([hidden])")
            or not find(b, "header.top").is_displayed()
        )
        with psycopg.connect(c.db_url) as conn:
            open_n, overdue_n = conn.execute(
                """SELECT count(*), count(*) FILTER (WHERE due_at < now())
                   FROM tickets t JOIN sites s ON s.id = t.site_id
                   WHERE t.status <> 'closed' AND s.region_id = 'd-east'"""
            ).fetchone() or (0, 0)
            (alarms_n,) = conn.execute(
                """SELECT count(*) FROM alarms a JOIN sites s ON s.id = a.site_id
                   WHERE a.status <> 'cleared' AND s.region_id = 'd-east'"""
            ).fetchone() or (0,)
        assert text(b, "#kpi-open") == str(open_n)
        assert text(b, "#kpi-overdue") == str(overdue_n)
        assert text(b, "#kpi-alarms") == str(alarms_n)
        assert attr(b, "#wall-trend", "data-days") == "30"
        find(b, "#wall button[data-days='7']").click()
        wait_until(lambda: attr(b, "#wall-trend", "data-days") == "7", what="7-day trend")
        raise_alarm(c.db_url, site="east-2", rule="temp_low", tier=2)
        wait_until(
            lambda: text(b, "#kpi-alarms") == str(alarms_n + 1),
            timeout=LIVE_S,
            what="the wall counts the new alarm",
        )
        overflow = b.execute_script(
            "const e = document.scrollingElement; return e.scrollWidth - e.clientWidth;"
        )
        assert overflow <= 0
        shot(b, "wall-1920x1080.png")
        find(b, "#wall-exit").click()
        find(b, "#sites-table")
        assert find(b, "header.top").is_displayed()  # the console's header is back
        assert console_errors(b) == []
    finally:
        b.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_hub_reconnects_after_losing_its_connection_and_asks_for_a_resync(
    module_console: Console,
) -> None:
    c = module_console
    with event_stream(c, "reg-east") as lines:
        assert next_event(lines, timeout=10)["event"] == "hello"
        with psycopg.connect(c.db_url, autocommit=True) as conn:  # e.g. a database failover
            killed = conn.execute(
                """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                   WHERE datname = current_database() AND query = 'LISTEN bk_live'"""
            ).fetchall()
        assert killed == [(True,)]
        assert next_event(lines, timeout=10)["event"] == "resync"  # pages reload their data
        alarm = raise_alarm(c.db_url, site="east-2", rule="temp_high")
        ev = next_event(lines, timeout=5)
        assert ev["event"] == "alarm"
        assert f'"id": {alarm}' in ev["data"]


def test_a_stream_ends_when_its_user_signs_out_and_devices_get_none(
    module_console: Console,
) -> None:
    """The token was checked only when the stream opened: after sign-out (or a disable) the
    open stream went on delivering the canteen's events for up to its minute. And an edge
    box's device token opened it although every other human route refuses devices."""
    from api.auth.users import create_device

    c = module_console
    client = httpx.Client(base_url=c.url, timeout=httpx.Timeout(10, read=None))
    assert (
        client.post(
            "/api/v1/auth/login", json={"username": "officer-e1", "password": PASSWORD}
        ).status_code
        == 200
    )
    lines: queue.Queue[str] = queue.Queue()
    ended = threading.Event()

    def read() -> None:
        try:
            with client.stream("GET", "/console/api/events") as resp:
                for line in resp.iter_lines():
                    lines.put(line)
        except httpx.HTTPError:
            pass
        finally:
            ended.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert next_event(lines, timeout=10)["event"] == "hello"
        cookies = dict(client.cookies)
        with httpx.Client(base_url=c.url, cookies=cookies, timeout=5) as other:
            assert other.post("/api/v1/auth/logout").status_code == 204
        raise_alarm(c.db_url, site="east-1", rule="temp_high")
        with pytest.raises(queue.Empty):
            next_event(lines, timeout=1.5)  # the alarm is not delivered to a signed-out user
        assert ended.wait(5), "the stream stayed open after sign-out"
    finally:
        client.close()
    with psycopg.connect(c.db_url, autocommit=True) as conn:
        issued = create_device(conn, name="box-live-test", site_ids=("east-1",), now=utcnow())
    with httpx.Client(base_url=c.url, timeout=5) as box:
        r = box.get("/console/api/events", headers={"Authorization": f"Bearer {issued.token}"})
        assert r.status_code == 403
