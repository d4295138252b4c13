"""The kitchen-display page served by the box: a full-screen pop-up per violation (自动弹窗提醒).

Stdlib only (``http.server``): ``/`` is a self-contained page (inline CSS/JS, no
CDN) that listens on ``/events`` (Server-Sent Events) and shows, in plain words, what
happened and what to do now (Chinese and English), where (the camera's name, never its
id) and the snapshot from ``/snapshot/<event_id>.jpg``. One click on the page arms the
alert sound and the spoken line (browsers play audio only after a click). Kitchen staff
acknowledge with ``POST /ack/<event_id>``: every open page is told at once. ``/recent``
lists the last reminders (newest first) so a page opened later shows them too;
``/healthz`` answers ``ok``. The last ``keep`` reminders and snapshots stay in memory.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from bkcommon.localtime import region_zone_name

logger = logging.getLogger(__name__)

_SNAP_RE = re.compile(r"^/snapshot/([A-Za-z0-9_.\-]{1,64})\.jpg$")
_ACK_RE = re.compile(r"^/ack/([A-Za-z0-9_.\-]{1,64})$")

ADVICE: dict[str, tuple[str, str]] = {
    "no_mask": ("请立即戴好口罩。", "Put on a mask now."),
    "no_chef_hat": ("请立即戴好工作帽。", "Put on a hat now."),
    "no_uniform": ("请立即穿好工作服。", "Put on work clothes now."),
    "smoking": ("后厨禁止吸烟，请立即熄灭。", "No smoking in the kitchen: put it out now."),
    "phone": ("操作时请放下手机，洗手后再继续。", "Put the phone away and wash your hands."),
    "mixed_cutting_board": (
        "立即停用混用的砧板，按颜色区分生熟，清洗消毒后再用。",
        "Stop using the mixed board; keep raw and cooked boards apart by colour, wash it.",
    ),
    "pest": ("立即检查并清理，联系消杀。", "Check and clean now, call pest control."),
    "bin_uncovered": ("请盖好垃圾桶。", "Close the bin lid."),
    "camera_offline": ("检查摄像头电源和网线。", "Check the camera's power and cable."),
    "camera_blurred": ("擦拭镜头、移开遮挡物。", "Wipe the lens, remove what covers it."),
}
"""Rule → (zh, en) of what kitchen staff do now; unknown rules get a general line."""

_DEFAULT_ADVICE = ("请立即检查并处理，处理后点“已处理”。", "Check and fix it now, then press Done.")
_PING_S = 10.0


@dataclass(frozen=True, slots=True)
class Reminder:
    """What the pop-up shows: rule titles, camera, zone, time and the snapshot link."""

    event_id: str
    rule: str
    title_zh: str
    title_en: str
    camera_id: str
    zone: str | None
    ts: str
    snapshot_url: str | None = None
    camera_name: str = ""
    advice_zh: str = ""
    advice_en: str = ""
    acknowledged_at: str | None = None


class KitchenDisplay:
    """A small HTTP server pushing reminders to every open kitchen-display page."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8088,
        *,
        keep: int = 50,
        popup_seconds: float = 15.0,
        camera_names: dict[str, str] | None = None,
        time_zone: str | None = None,
    ) -> None:
        """Prepare the server; :meth:`start` binds it. ``camera_names`` words the pop-up.

        Times show in ``time_zone`` (default the region's, ``BK_TIME_ZONE``), not in the
        display computer's own zone: a kiosk box is often left on UTC, eight hours off the
        kitchen's clock."""
        self.host = host
        self.port = port
        self.keep = keep
        self.popup_seconds = popup_seconds
        self.camera_names = dict(camera_names or {})
        self._snapshots: OrderedDict[str, bytes] = OrderedDict()
        self._recent: OrderedDict[str, Reminder] = OrderedDict()
        self._clients: set[queue.Queue[str | None]] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        page = resources.files("edge").joinpath("display_page.html").read_text(encoding="utf-8")
        zone = time_zone or region_zone_name()
        self._page = (
            page.replace("__POPUP_MS__", str(int(popup_seconds * 1000)))
            .replace("__TIME_ZONE__", json.dumps(zone))
            .encode()
        )

    @property
    def url(self) -> str:
        """Base URL of the page."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> int:
        """Bind and serve in a background thread; return the bound port."""
        display = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                logger.debug("display %s: %s", self.client_address[0], format % args)

            def do_GET(self) -> None:
                display._handle(self)

            def do_POST(self) -> None:
                display._handle_post(self)

        srv = ThreadingHTTPServer((self.host, self.port), Handler)
        srv.daemon_threads = True
        self._server = srv
        self.port = int(srv.server_address[1])
        self._thread = threading.Thread(
            target=srv.serve_forever, name="kitchen-display", daemon=True
        )
        self._thread.start()
        logger.info("kitchen display on %s", self.url)
        return self.port

    def stop(self) -> None:
        """Close every event stream and stop the server."""
        with self._lock:
            for q in self._clients:
                q.put_nowait(None)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def clients(self) -> int:
        """Number of open event streams (pages showing reminders)."""
        with self._lock:
            return len(self._clients)

    def push(self, reminder: Reminder, jpeg: bytes | None = None) -> None:
        """Keep the reminder and snapshot and send it to every open page at once."""
        advice = ADVICE.get(reminder.rule, _DEFAULT_ADVICE)
        extra: dict[str, str | None] = {
            "camera_name": reminder.camera_name or self.camera_names.get(reminder.camera_id, ""),
            "advice_zh": reminder.advice_zh or advice[0],
            "advice_en": reminder.advice_en or advice[1],
        }
        if jpeg is not None:
            extra["snapshot_url"] = f"/snapshot/{reminder.event_id}.jpg"
        reminder = replace(reminder, **extra)  # type: ignore[arg-type]
        with self._lock:
            if jpeg is not None:
                self._snapshots[reminder.event_id] = jpeg
                while len(self._snapshots) > self.keep:
                    self._snapshots.popitem(last=False)
            self._recent[reminder.event_id] = reminder
            while len(self._recent) > self.keep:
                self._recent.popitem(last=False)
        self._broadcast("alert", reminder.event_id, asdict(reminder))

    def acknowledge(self, event_id: str, at: str) -> Reminder | None:
        """Mark a kept reminder handled (first time wins) and tell every open page."""
        with self._lock:
            found = self._recent.get(event_id)
            if found is None:
                return None
            if found.acknowledged_at is None:
                found = replace(found, acknowledged_at=at)
                self._recent[event_id] = found
        self._broadcast(
            "ack", event_id, {"event_id": event_id, "acknowledged_at": found.acknowledged_at}
        )
        return found

    def recent(self) -> list[Reminder]:
        """The kept reminders, newest first."""
        with self._lock:
            return list(reversed(self._recent.values()))

    def _broadcast(self, kind: str, event_id: str, body: dict[str, object]) -> None:
        data = json.dumps(body, ensure_ascii=False)
        frame = f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"
        with self._lock:
            for q in list(self._clients):
                try:
                    q.put_nowait(frame)
                except queue.Full:
                    logger.warning("a kitchen display is not reading; closing its stream")
                    self._clients.discard(q)

    def snapshot(self, event_id: str) -> bytes | None:
        """The kept snapshot of an event, if still in memory."""
        with self._lock:
            return self._snapshots.get(event_id)

    # -- request handling ---------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            self._send(h, 200, "text/html; charset=utf-8", self._page)
        elif path == "/healthz":
            self._send(h, 200, "text/plain; charset=utf-8", b"ok\n")
        elif path == "/events":
            self._stream(h)
        elif path == "/recent":
            body = json.dumps([asdict(r) for r in self.recent()], ensure_ascii=False)
            self._send(h, 200, "application/json; charset=utf-8", body.encode())
        elif m := _SNAP_RE.match(path):
            jpeg = self.snapshot(m.group(1))
            if jpeg is None:
                self._send(h, 404, "text/plain; charset=utf-8", b"snapshot not kept\n")
            else:
                self._send(h, 200, "image/jpeg", jpeg)
        else:
            self._send(h, 404, "text/plain; charset=utf-8", b"not found\n")

    def _handle_post(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        m = _ACK_RE.match(path)
        if m is None:
            self._send(h, 404, "text/plain; charset=utf-8", b"not found\n")
            return
        at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        found = self.acknowledge(m.group(1), at)
        if found is None:
            self._send(h, 404, "text/plain; charset=utf-8", b"reminder not kept\n")
            return
        logger.info("reminder %s acknowledged on the kitchen display", found.event_id)
        body = json.dumps(asdict(found), ensure_ascii=False).encode()
        self._send(h, 200, "application/json; charset=utf-8", body)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, code: int, ctype: str, body: bytes) -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Cache-Control", "no-store")
        h.end_headers()
        h.wfile.write(body)

    def _stream(self, h: BaseHTTPRequestHandler) -> None:
        q: queue.Queue[str | None] = queue.Queue(maxsize=256)
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream; charset=utf-8")
        h.send_header("Cache-Control", "no-store")
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            h.wfile.write(b"retry: 1000\n: connected\n\n")
            h.wfile.flush()
            with self._lock:
                self._clients.add(q)
            while True:
                try:
                    item = q.get(timeout=_PING_S)
                except queue.Empty:
                    with self._lock:
                        dropped = q not in self._clients
                    if dropped:  # set aside by _broadcast: close, so the page reconnects
                        return
                    item = ": ping\n\n"
                if item is None:
                    return
                h.wfile.write(item.encode())
                h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            return
        finally:
            with self._lock:
                self._clients.discard(q)
