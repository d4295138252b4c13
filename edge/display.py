"""The kitchen-display page served by the box: a full-screen pop-up per violation (自动弹窗提醒).

Stdlib only (``http.server``): ``/`` is a self-contained page (inline CSS/JS, no
CDN) that listens on ``/events`` (Server-Sent Events) and shows the rule in
Chinese and English with the snapshot from ``/snapshot/<event_id>.jpg``;
``/healthz`` answers ``ok``. The last ``keep`` snapshots stay in memory.
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

logger = logging.getLogger(__name__)

_SNAP_RE = re.compile(r"^/snapshot/([A-Za-z0-9_.\-]{1,64})\.jpg$")
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


class KitchenDisplay:
    """A small HTTP server pushing reminders to every open kitchen-display page."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8088,
        *,
        keep: int = 50,
        popup_seconds: float = 15.0,
    ) -> None:
        """Prepare the server; :meth:`start` binds it."""
        self.host = host
        self.port = port
        self.keep = keep
        self.popup_seconds = popup_seconds
        self._snapshots: OrderedDict[str, bytes] = OrderedDict()
        self._clients: set[queue.Queue[str | None]] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        page = resources.files("edge").joinpath("display_page.html").read_text(encoding="utf-8")
        self._page = page.replace("__POPUP_MS__", str(int(popup_seconds * 1000))).encode()

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
        """Keep the snapshot and send the reminder to every open page at once."""
        if jpeg is not None:
            with self._lock:
                self._snapshots[reminder.event_id] = jpeg
                while len(self._snapshots) > self.keep:
                    self._snapshots.popitem(last=False)
            reminder = Reminder(
                **{**asdict(reminder), "snapshot_url": f"/snapshot/{reminder.event_id}.jpg"}
            )
        data = json.dumps(asdict(reminder), ensure_ascii=False)
        frame = f"id: {reminder.event_id}\nevent: alert\ndata: {data}\n\n"
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
        elif m := _SNAP_RE.match(path):
            jpeg = self.snapshot(m.group(1))
            if jpeg is None:
                self._send(h, 404, "text/plain; charset=utf-8", b"snapshot not kept\n")
            else:
                self._send(h, 200, "image/jpeg", jpeg)
        else:
            self._send(h, 404, "text/plain; charset=utf-8", b"not found\n")

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
