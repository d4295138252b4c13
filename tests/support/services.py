"""Real services for tests: PostgreSQL and Mosquitto on this machine, or throwaway ones.

Where 127.0.0.1:5432 / :1883 answer, tests use them (each test in its own database and
topic prefix). Where they do not, a throwaway server is started: ``pgserver`` for
PostgreSQL, the ``mosquitto`` binary (or the embedded amqtt broker) for MQTT.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

try:  # the browser tests poll pages that redraw; a node replaced mid-read is "not yet"
    from selenium.common.exceptions import StaleElementReferenceException as _ReplacedError
except ImportError:  # pragma: no cover - selenium is a dev dependency

    class _ReplacedError(Exception):  # type: ignore[no-redef]
        """Stands in where selenium is not installed: nothing raises it."""


REPO = Path(__file__).resolve().parents[2]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Return True when something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(pred: object, timeout: float = 10.0, interval: float = 0.05, what: str = "") -> None:
    """Poll ``pred()`` until true or raise AssertionError after ``timeout`` seconds.

    A browser element that the page replaced while ``pred`` read it counts as "not yet": live
    pages redraw rows under a test's feet, and the next poll finds the new node.
    """
    deadline = time.monotonic() + timeout
    replaced: _ReplacedError | None = None
    while time.monotonic() < deadline:
        try:
            if pred():  # type: ignore[operator]
                return
            replaced = None
        except _ReplacedError as e:
            replaced = e  # named below if it is still so at the end
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or pred}") from replaced


@dataclass
class Broker:
    """A Mosquitto process the test owns (so it may stop and restart it)."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    # mosquitto.conf options that replace the deploy/ value (or are added), e.g. a small
    # ``max_queued_messages`` to make the broker drop
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """mqtt:// URL of this broker."""
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start mosquitto with the deploy/ settings (persistence on) and wait for the port."""
        conf = self.workdir / "mosquitto.conf"
        base = (REPO / "deploy/mosquitto/mosquitto.conf").read_text()
        base = base.replace(
            "persistence_location /var/lib/mosquitto/", f"persistence_location {self.workdir}/"
        )
        base = base.replace("listener 1883", f"listener {self.port} 127.0.0.1")
        lines = [ln for ln in base.splitlines() if ln.split(" ", 1)[0] not in self.overrides]
        lines += [f"{key} {value}" for key, value in self.overrides.items()]
        conf.write_text("\n".join(lines) + "\n")
        log = (self.workdir / "mosquitto.log").open("ab")
        self.proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=log, stderr=log)
        wait_until(lambda: port_open("127.0.0.1", self.port), 10, what="mosquitto to listen")

    def stop(self, hard: bool = False) -> None:
        """Stop the broker (SIGKILL when ``hard``) and wait for it to exit."""
        if self.proc is None:
            return
        if hard:
            self.proc.kill()
        else:
            self.proc.terminate()
        self.proc.wait(10)
        self.proc = None


def mosquitto_binary() -> str:
    """Path of the mosquitto binary, or raise FileNotFoundError."""
    path = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if not path:
        raise FileNotFoundError("mosquitto is not installed (apt-get install mosquitto)")
    return path


@contextlib.contextmanager
def private_broker(**overrides: str) -> Iterator[Broker]:
    """A private Mosquitto on a free port with persistence, torn down afterwards; keyword
    arguments replace options of the deploy/ configuration."""
    with tempfile.TemporaryDirectory(prefix="bk-mosq-") as d:
        # Mosquitto started as root drops to the `mosquitto` user: it must be able to
        # write its persistence file here, or sessions are lost across a restart.
        Path(d).chmod(0o777)
        b = Broker(port=free_port(), workdir=Path(d), overrides=overrides)
        b.start()
        try:
            yield b
        finally:
            b.stop()


def postgres_base_url() -> tuple[str, object | None]:
    """Return (server URL without database, handle) for the test PostgreSQL server.

    ``BK_TEST_DATABASE_URL`` (or the older ``BK_TEST_PG_URL``) points the whole suite at
    another server, e.g. a TimescaleDB one: ``postgresql://user@host:5432``. A database
    name in it is ignored (each test gets its own database); options such as the SSL mode
    go in libpq's environment (``PGSSLMODE``, ``PGPASSWORD``), since test URLs are built
    as ``<server>/<database>``.
    """
    env = os.environ.get("BK_TEST_DATABASE_URL") or os.environ.get("BK_TEST_PG_URL")
    if env:
        return server_url(env), None
    if port_open("127.0.0.1", 5432):
        return "postgresql://postgres@127.0.0.1:5432", None
    import pgserver  # throwaway embedded server on a fresh machine

    srv = pgserver.get_server(tempfile.mkdtemp(prefix="bk-pg-"), cleanup_mode="stop")
    uri = srv.get_uri()
    return uri.rsplit("/", 1)[0], srv


def server_url(url: str) -> str:
    """``url`` without its database name; refuse a query string, which would not survive
    appending a database name."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"BK_TEST_DATABASE_URL must be a postgresql:// URL, not {parts.scheme!r}")
    if parts.query or parts.fragment:
        raise ValueError(
            "BK_TEST_DATABASE_URL must have no ?options: set them in the environment "
            "(PGSSLMODE, PGPASSWORD, ...) instead"
        )
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))
